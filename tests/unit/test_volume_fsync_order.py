"""Every stage and commit answer comes after the fsyncs that make it durable.

SIGKILL keeps the page cache, so kill tests alone cannot show a missing fsync: here
os.fsync is wrapped to record which file or directory it flushed, and each answer is
checked against what had been flushed by the time it came back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.test_volume_objects import aid, commit_body, fragment_path
from tests.unit.volume_support import running

pytestmark = pytest.mark.anyio


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths os.fsync was called on, in order."""
    seen: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        real(fd)
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", recording)
    return seen


async def test_stage_then_commit_answers_follow_their_fsyncs(tmp_path: Path,
                                                             flushed: list[str]) -> None:
    data_dir = tmp_path / "data"
    async with running(data_dir) as client:
        data = os.urandom(300_000)
        r = await client.put("/stage/st1", content=data, params={"size": len(data)})
        assert r.status_code == 200, r.text
        staged = [p for p in flushed if "/staging/st1" in p]
        assert staged, f"stage answered before its file was fsynced: {flushed}"

        flushed.clear()
        archive = aid("k", "0001")
        r = await client.post("/objects/commit", json=commit_body(
            "k", "0001", stage_id="st1", archive_id=archive, archives=[archive]))
        assert r.status_code == 200, r.text
        target = fragment_path(data_dir, archive)
        assert target.exists()
        # The rename is made durable by fsyncing the archive's directory and, as they
        # were created for it, the directories above it, all before the answer.
        assert str(target.parent) in flushed
        assert str(target.parent.parent) in flushed
        assert str(data_dir / "fragments") in flushed
        assert flushed.index(str(target.parent)) < flushed.index(str(target.parent.parent))


async def test_index_is_synchronous_full(tmp_path: Path) -> None:
    """The commit's SQLite transaction is flushed before it returns (synchronous=FULL
    on the writer's connection); WAL mode so readers never block it."""
    async with running(tmp_path / "data") as client:
        r = await client.get("/health")
        assert r.status_code == 200
    import sqlite3

    conn = sqlite3.connect(tmp_path / "data" / "index.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    from volume_server.index import _connect

    conn = _connect(tmp_path / "data" / "index.sqlite", readonly=False)
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()
