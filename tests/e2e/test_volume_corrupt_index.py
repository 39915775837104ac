"""A volume whose SQLite index is corrupt stops at start-up with one line naming the file."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shardgate.config import load_config
from shardgate.devconfig import DevOptions, write_config
from shardgate.tokens import mint_token
from tests.e2e.cluster import wait_http

pytestmark = pytest.mark.e2e


def _volume_args(config: Path) -> list[str]:
    return [sys.executable, "-m", "shardgate", "volume", "--config", str(config), "--id", "v1"]


def _serve_once(config: Path, log: Path) -> None:
    """Start v1, wait until it answers, stop it: leaves a real index behind."""
    cfg = load_config(config)
    with open(log, "ab") as out:
        proc = subprocess.Popen(_volume_args(config), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(f"{cfg.volume('v1').url}/health", timeout=60,
                      token=mint_token(cfg.jwt_secret, "v1", "read"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert proc.returncode == 0, log.read_text()


def test_clobbered_index_header_is_a_one_line_error(tmp_path: Path) -> None:
    config = write_config(DevOptions(data=tmp_path / "data"))
    index = Path(load_config(config).volume("v1").data_dir) / "index.sqlite"
    _serve_once(config, tmp_path / "v1.log")
    _serve_once(config, tmp_path / "v1.log")  # an existing healthy index passes the check
    with open(index, "r+b") as fh:
        fh.write(b"garbage!" * 16)
    done = subprocess.run(_volume_args(config), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(index) in lines[0]
    assert lines[0].startswith("shardgate: ")
