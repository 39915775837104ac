"""Pure pieces of the volume server: names -> paths, Range parsing, the batching writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from volume_server.archives import BadRange, Unsatisfiable, parse_range
from volume_server.index import Index, IndexClosed
from volume_server.layout import BadName, Layout, check_archive_id, check_stage_id


def test_archive_paths_fan_out_inside_the_data_dir(tmp_path: Path) -> None:
    layout = Layout(tmp_path, "v1")
    archive = "ab" + "cd" + "0" * 36
    path = layout.archive_path(archive)
    assert path == tmp_path.resolve() / "fragments" / "ab" / "cd" / archive
    for bad in ("../" + "0" * 37, "0" * 39 + "/", "0" * 40 + "\n", "", "A" * 40, None, 7):
        with pytest.raises(BadName):
            check_archive_id(bad)


def test_stage_ids(tmp_path: Path) -> None:
    layout = Layout(tmp_path, "v1")
    assert layout.staged_path("a-b_c.1") == tmp_path.resolve() / "staging" / "a-b_c.1"
    assert layout.partial_path("x").name == "x.part"
    for bad in ("..", ".", ".x", "a/b", "x.part", "", "a" * 97, "é"):
        with pytest.raises(BadName):
            check_stage_id(bad)


@pytest.mark.parametrize(("header", "span"), [
    (None, None),
    ("bytes=0-9", (0, 9)),
    ("bytes=5-", (5, 99)),
    ("bytes=-7", (93, 99)),
    ("bytes=-500", (0, 99)),
    ("bytes=90-500", (90, 99)),
    (" bytes=1-1 ", (1, 1)),
])
def test_parse_range(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=a-b", "bytes=-", "bytes=5-3", "items=0-1",
                                    "bytes=0-1,3-4"])
def test_parse_range_rejects(header: str) -> None:
    with pytest.raises(BadRange):
        parse_range(header, 100)


@pytest.mark.parametrize(("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100),
                                              ("bytes=0-", 0), ("bytes=-5", 0)])
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def _insert(conn: sqlite3.Connection, name: str) -> str:
    conn.execute("INSERT INTO buckets VALUES (?, 'o', 'i', 0, 0, 1)", (name,))
    return threading.current_thread().name


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM buckets").fetchone()[0]


def test_index_batches_writes_and_isolates_failures(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    index.open()

    async def scenario() -> None:
        names = [f"b{n}" for n in range(200)] + ["b7"]  # the duplicate fails alone
        results = await asyncio.gather(*(index.write(_insert, n) for n in names),
                                       return_exceptions=True)
        assert all(r == "index-writer" for r in results[:200])
        assert isinstance(results[200], sqlite3.IntegrityError)
        assert await index.read(_count) == 200

    try:
        asyncio.run(scenario())
    finally:
        index.close()

    async def after_close() -> None:
        with pytest.raises(IndexClosed):
            await index.write(_insert, "late")
        with pytest.raises(IndexClosed):
            await index.read(_count)

    asyncio.run(after_close())
