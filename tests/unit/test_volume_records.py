"""Buckets, the heal queue, and what survives a restart (uploads: test_volume_uploads.py)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardgate.manifest import archive_id
from tests.unit.volume_support import INC, VOLUME, running
from volume_server.index import SCHEMA_VERSION
from volume_server.layout import LayoutError, VolumeLocked

pytestmark = pytest.mark.anyio

@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def bucket(stamp: int, **changes: Any) -> dict[str, Any]:
    return {"name": "photos", "owner": "alice", "incarnation": f"inc{stamp}",
            "created": 100.0 + stamp, "deleted": False, "stamp": stamp, **changes}


async def test_bucket_upsert_keeps_highest_stamp(client: httpx.AsyncClient) -> None:
    assert (await client.get("/buckets/photos")).status_code == 404
    r = await client.put("/buckets/photos", json=bucket(2))
    assert r.json() == {"stored": True}
    assert (await client.put("/buckets/photos", json=bucket(1))).json() == {"stored": False}
    assert (await client.put("/buckets/photos", json=bucket(2))).json() == {"stored": False}
    assert (await client.get("/buckets/photos")).json() == {**bucket(2), "settings": {}}
    tomb = bucket(3, deleted=True)
    assert (await client.put("/buckets/photos", json=tomb)).json() == {"stored": True}
    assert (await client.get("/buckets/photos")).json() == {**tomb, "settings": {}}
    await client.put("/buckets/alpha", json=bucket(1, name="alpha"))
    listed = (await client.get("/buckets")).json()["buckets"]
    assert [b["name"] for b in listed] == ["alpha", "photos"]
    assert listed[1]["deleted"] is True
    r = await client.put("/buckets/photos", json=bucket(9, name="other"))
    assert r.status_code == 400
    r = await client.put("/buckets/photos", json={**bucket(9), "stamp": "high"})
    assert r.status_code == 400


async def stage(client: httpx.AsyncClient, stage_id: str, data: bytes) -> None:
    assert (await client.put(f"/stage/{stage_id}", content=data)).status_code == 200


async def test_heal_queue_survives_restart(data_dir: Path) -> None:
    heal = [{"archive_id": archive_id(INC, "k", "t", 4), "index": 4, "reason": "v5 down"},
            {"archive_id": archive_id(INC, "k", "t", 5), "index": 5, "reason": "v6 down"}]
    async with running(data_dir) as client:
        assert (await client.get("/heal")).json() == {"entries": [], "depth": 0}
        r = await client.post("/objects/commit", json={
            "incarnation": INC, "key": "k", "version_id": "0" * 31 + "1", "deleted": False,
            "manifest": {}, "summary": {}, "heal": heal})
        assert r.status_code == 200
        await client.put("/buckets/b", json=bucket(1, name="b"))
    async with running(data_dir) as client:
        entries = (await client.get("/heal")).json()["entries"]
        assert [(e["archive_id"], e["index"], e["reason"]) for e in entries] == [
            (h["archive_id"], h["index"], h["reason"]) for h in heal]
        assert all(e["key"] == "k" and e["version_id"] == "0" * 31 + "1" and e["queued"] > 0
                   for e in entries)
        assert (await client.get("/buckets/b")).status_code == 200


async def test_restart_empties_staging_and_checks_format(data_dir: Path) -> None:
    async with running(data_dir) as client:
        await stage(client, "left-behind", b"crash leftovers")
    (data_dir / "staging" / "half.part").write_bytes(b"half")
    stored = json.loads((data_dir / "FORMAT").read_text())
    assert len(stored.pop("data_id")) == 32  # this directory's life; a new one, a new id
    assert stored == {"format": 1, "volume_id": VOLUME}
    async with running(data_dir) as client:
        assert os.listdir(data_dir / "staging") == []
        assert (await client.get("/health")).json()["format"] == 1
    with pytest.raises(LayoutError, match="belongs to volume"):
        async with running(data_dir, volume_id="v2"):
            pass
    (data_dir / "FORMAT").write_text(json.dumps({"format": 99, "volume_id": VOLUME}))
    with pytest.raises(LayoutError, match="format"):
        async with running(data_dir):
            pass


async def test_data_without_format_file_is_refused(data_dir: Path) -> None:
    (data_dir / "fragments").mkdir(parents=True)
    with pytest.raises(LayoutError, match="no FORMAT"):
        async with running(data_dir):
            pass


async def test_sqlite_is_wal_with_full_sync(client: httpx.AsyncClient, data_dir: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(data_dir / "index.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert {"objects", "inline_archives", "buckets", "uploads", "parts", "heal_queue",
            "upload_archives", "upload_claims"} <= tables


async def test_second_process_on_a_data_dir_is_refused(data_dir: Path) -> None:
    async with running(data_dir) as client:
        await stage(client, "in-flight", b"being committed")
        with pytest.raises(VolumeLocked, match=f"in use by another volume process \\(pid "
                                               f"{os.getpid()} "):
            async with running(data_dir):
                pass
        # the refused start did not empty the running volume's staging area
        assert os.listdir(data_dir / "staging") == ["in-flight"]
        assert (await client.get("/health")).status_code == 200
    async with running(data_dir) as client:  # the lock went with the first store
        assert (await client.get("/health")).status_code == 200


async def test_schema_1_index_is_upgraded(data_dir: Path) -> None:
    import sqlite3

    async with running(data_dir) as client:
        await client.put("/buckets/b", json=bucket(1, name="b"))
    conn = sqlite3.connect(data_dir / "index.sqlite")
    try:
        conn.executescript("DROP TABLE upload_archives; DROP TABLE upload_claims;"
                           " PRAGMA user_version=1;")
    finally:
        conn.close()
    async with running(data_dir) as client:
        assert (await client.get("/buckets/b")).status_code == 200
        await client.put("/uploads/u1", json={
            "incarnation": INC, "bucket": "b", "key": "k", "upload_id": "u1", "initiated": 1.0,
            "owner": "alice", "manifest": {}})
        r = await client.post("/uploads/u1/claim", json={"token": "t", "op": "abort"})
        assert r.status_code == 200, r.text
    conn = sqlite3.connect(data_dir / "index.sqlite")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


async def test_bucket_settings_keep_the_newest_stamp_per_setting(client: httpx.AsyncClient
                                                                  ) -> None:
    await client.put("/buckets/photos", json=bucket(1))

    async def put(setting: str, stamp: int, value: Any, incarnation: str = "inc1") -> bool:
        r = await client.put(f"/buckets/photos/settings/{setting}", json={
            "incarnation": incarnation, "stamp": stamp, "value": value})
        assert r.status_code == 200, r.text
        return r.json()["stored"]

    assert await put("tags", 5, {"a": "1"})
    assert not await put("tags", 4, {"old": "x"})  # late and older: ignored
    assert await put("versioning", 3, "Enabled")  # another setting keeps its own stamp
    assert await put("tags", 9, {}, incarnation="inc0")  # an old incarnation's: not shown
    settings = (await client.get("/buckets/photos")).json()["settings"]
    assert settings == {"tags": {"stamp": 5, "value": {"a": "1"}},
                        "versioning": {"stamp": 3, "value": "Enabled"}}


async def test_durable_tombstones_page_in_key_order(client: httpx.AsyncClient) -> None:
    deleted = [("inc-b", "k1", "v2"), ("inc-a", "k2", "v1"), ("inc-a", "k1", "v9"),
               ("inc-a", "k1", "v3"), ("inc-b", "k0", "v1")]
    for inc, key, version in deleted:
        r = await client.post("/objects/forget", json={"incarnation": inc, "key": key,
                                                       "version_id": version,
                                                       "durable": True})
        assert r.status_code == 200, r.text
    await client.post("/objects/forget", json={"incarnation": "inc-a", "key": "k5",
                                               "version_id": "v1", "durable": False})
    seen, params = [], {"limit": "2"}
    while True:
        page = (await client.get("/objects/tombstones", params=params)).json()
        seen += [(t["incarnation"], t["key"], t["version_id"]) for t in page["tombstones"]]
        if page["next"] is None:
            break
        params = {"limit": "2", **dict(zip(("after_incarnation", "after_key", "after_version"),
                                           page["next"], strict=True))}
    assert seen == sorted(deleted)  # the pending one is not moved: its heal entry is
