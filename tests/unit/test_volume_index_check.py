"""volume_server.serve.check_index: an unreadable index is one ConfigError naming it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shardgate.config import ConfigError
from volume_server.serve import check_index


def _make_index(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()


def test_missing_and_healthy_index_pass(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    check_index(path)
    assert not path.exists()  # a new volume's store creates it, not the check
    _make_index(path)
    check_index(path)


@pytest.mark.parametrize("garbage", [b"garbage!" * 16, b"\x00" * 100])
def test_clobbered_header_is_a_config_error(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "index.sqlite"
    _make_index(path)
    with open(path, "r+b") as fh:
        fh.write(garbage)
    with pytest.raises(ConfigError) as err:
        check_index(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_not_a_database_at_all(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(ConfigError, match="not a usable SQLite database"):
        check_index(path)
