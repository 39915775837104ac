"""Buckets, multipart uploads and parts, the heal queue, and what survives a restart."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.manifest import archive_id
from shardgate.tokens import mint_token
from volume_server.app import create_app
from volume_server.layout import LayoutError

pytestmark = pytest.mark.anyio

SECRET = "volume-test-secret-0123456789abcdef"
VOLUME = "v1"
INC = "inc1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.asynccontextmanager
async def running(data_dir: Path, volume_id: str = VOLUME
                  ) -> AsyncIterator[httpx.AsyncClient]:
    config = ClusterConfig(volumes=(VolumeSpec(id=volume_id, url="http://127.0.0.1:1"),),
                           jwt_secret=SECRET)
    app = create_app(config, volume_id, data_dir)
    token = mint_token(SECRET, volume_id, "write")
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://volume",
            headers={"authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def bucket(stamp: int, **changes: Any) -> dict[str, Any]:
    return {"name": "photos", "owner": "alice", "incarnation": f"inc{stamp}",
            "created": 100.0 + stamp, "deleted": False, "stamp": stamp, **changes}


def fragment_path(data_dir: Path, archive: str) -> Path:
    return data_dir / "fragments" / archive[:2] / archive[2:4] / archive


async def test_bucket_upsert_keeps_highest_stamp(client: httpx.AsyncClient) -> None:
    assert (await client.get("/buckets/photos")).status_code == 404
    r = await client.put("/buckets/photos", json=bucket(2))
    assert r.json() == {"stored": True}
    assert (await client.put("/buckets/photos", json=bucket(1))).json() == {"stored": False}
    assert (await client.put("/buckets/photos", json=bucket(2))).json() == {"stored": False}
    assert (await client.get("/buckets/photos")).json() == bucket(2)
    tomb = bucket(3, deleted=True)
    assert (await client.put("/buckets/photos", json=tomb)).json() == {"stored": True}
    assert (await client.get("/buckets/photos")).json() == tomb
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


async def commit_part(client: httpx.AsyncClient, upload: str, number: int, tag: str,
                      data: bytes) -> str:
    archive = archive_id(INC, "big", tag, 0)
    await stage(client, f"p-{tag}", data)
    r = await client.post("/parts/commit", json={
        "upload_id": upload, "part_number": number, "stage_id": f"p-{tag}",
        "archive_id": archive, "manifest": {"number": number, "tag": tag}})
    assert r.status_code == 200, r.text
    assert r.json() == {"committed": True}
    return archive


def upload(upload_id: str, key: str = "big", incarnation: str = INC,
           initiated: float = 1.0) -> dict[str, Any]:
    return {"incarnation": incarnation, "bucket": "b", "key": key, "upload_id": upload_id,
            "initiated": initiated, "owner": "alice", "manifest": {"content_type": "x/y"}}


async def test_upload_records(client: httpx.AsyncClient) -> None:
    assert (await client.get("/uploads/u1")).status_code == 404
    assert (await client.put("/uploads/u1", json=upload("u1"))).json() == {"stored": True}
    await client.put("/uploads/u2", json=upload("u2", key="alpha", initiated=2.0))
    await client.put("/uploads/u3", json=upload("u3", incarnation="other"))
    assert (await client.get("/uploads/u1")).json() == upload("u1")
    listed = (await client.get("/uploads", params={"incarnation": INC})).json()["uploads"]
    assert [u["upload_id"] for u in listed] == ["u2", "u1"]
    listed = (await client.get("/uploads", params={"incarnation": INC, "prefix": "bi"})).json()
    assert [u["upload_id"] for u in listed["uploads"]] == ["u1"]
    assert len((await client.get("/uploads")).json()["uploads"]) == 3
    assert (await client.put("/uploads/u9", json=upload("u1"))).status_code == 400


async def test_parts_lifecycle_and_abort(client: httpx.AsyncClient, data_dir: Path) -> None:
    await client.put("/uploads/u1", json=upload("u1"))
    first = await commit_part(client, "u1", 2, "t2", b"part two")
    replaced = await commit_part(client, "u1", 1, "t1", b"part one")
    again = await commit_part(client, "u1", 1, "t1b", b"part one, again")
    assert not fragment_path(data_dir, replaced).exists()
    parts = (await client.get("/uploads/u1/parts")).json()["parts"]
    assert parts == [
        {"part_number": 1, "archive_id": again, "manifest": {"number": 1, "tag": "t1b"}},
        {"part_number": 2, "archive_id": first, "manifest": {"number": 2, "tag": "t2"}}]
    assert (await client.get(f"/archives/{again}")).content == b"part one, again"
    # a retried part commit whose stage is already installed succeeds
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 1, "stage_id": "p-t1b", "archive_id": again,
        "manifest": {}})
    assert r.status_code == 200
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 3, "stage_id": "nothing", "archive_id": again,
        "manifest": {}})
    assert r.status_code == 404
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 0, "stage_id": "p", "archive_id": again})
    assert r.status_code == 400

    assert (await client.delete("/uploads/u1", params={"keep_archives": 0})).status_code == 204
    assert (await client.get("/uploads/u1")).status_code == 404
    assert (await client.get("/uploads/u1/parts")).json() == {"parts": []}
    assert not fragment_path(data_dir, first).exists()
    assert not fragment_path(data_dir, again).exists()
    assert (await client.delete("/uploads/u1")).status_code == 204


async def test_complete_keeps_archives_for_the_object(client: httpx.AsyncClient,
                                                      data_dir: Path) -> None:
    await client.put("/uploads/u1", json=upload("u1"))
    a1 = await commit_part(client, "u1", 1, "c1", b"one")
    a2 = await commit_part(client, "u1", 2, "c2", b"two")
    r = await client.post("/objects/commit", json={
        "incarnation": INC, "key": "big", "version_id": "0" * 31 + "1", "deleted": False,
        "manifest": {}, "summary": {"size": 6, "etag": "x-2", "last_modified": 1.0,
                                    "owner": "alice"},
        "stage_id": None, "archive_id": None, "inline": False, "archives": [a1, a2],
        "heal": []})
    assert r.status_code == 200
    r = await client.delete("/uploads/u1", params={"keep_archives": 1})
    assert r.status_code == 204
    assert fragment_path(data_dir, a1).exists() and fragment_path(data_dir, a2).exists()
    # a later overwrite of the key releases the completed upload's archives
    r = await client.post("/objects/commit", json={
        "incarnation": INC, "key": "big", "version_id": "0" * 31 + "2", "deleted": True,
        "manifest": {}, "summary": {}})
    assert r.status_code == 200
    assert not fragment_path(data_dir, a1).exists()


async def test_heal_queue_survives_restart(data_dir: Path) -> None:
    heal = [{"archive_id": archive_id(INC, "k", "t", 4), "index": 4, "reason": "v5 down"},
            {"archive_id": archive_id(INC, "k", "t", 5), "index": 5, "reason": "v6 down"}]
    async with running(data_dir) as client:
        assert (await client.get("/heal")).json() == {"entries": []}
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
    assert json.loads((data_dir / "FORMAT").read_text()) == {"format": 1, "volume_id": VOLUME}
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
    assert {"objects", "inline_archives", "buckets", "uploads", "parts",
            "heal_queue"} <= tables
