"""In-place attributes on one volume: newest stamp wins, absent versions refuse, and
superseded versions take theirs along."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.test_volume_objects import commit_body, vid
from tests.unit.volume_support import INC, running
from volume_server.layout import INDEX_FILE

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


async def set_tags(client: httpx.AsyncClient, version: str, stamp: str, tags: dict) -> bool:
    r = await client.post("/objects/attribute", json={
        "incarnation": INC, "key": "k", "version_id": version, "name": "tags",
        "stamp": stamp, "value": tags})
    assert r.status_code == 200, r.text
    return r.json()["found"]


async def held(client: httpx.AsyncClient, version: str) -> dict:
    r = await client.get("/objects/version", params={"incarnation": INC, "key": "k",
                                                     "version_id": version})
    assert r.status_code == 200, r.text
    return r.json()["attributes"]


async def test_newest_stamp_wins_whatever_the_order(client):
    await client.post("/objects/commit", json=commit_body("k", vid(1)))
    assert await set_tags(client, vid(1), "s2", {"b": "2"})
    assert await set_tags(client, vid(1), "s1", {"a": "1"})  # older, arrives late
    assert await held(client, vid(1)) == {"tags": {"stamp": "s2", "value": {"b": "2"}}}
    assert await set_tags(client, vid(1), "s3", {})
    assert await held(client, vid(1)) == {"tags": {"stamp": "s3", "value": {}}}


async def test_a_version_this_volume_lacks_is_refused(client):
    assert not await set_tags(client, vid(7), "s1", {"a": "1"})


async def test_superseded_versions_drop_their_attributes(client, data_dir):
    await client.post("/objects/commit", json=commit_body("k", vid(1)))
    assert await set_tags(client, vid(1), "s1", {"a": "1"})
    await client.post("/objects/commit", json=commit_body("k", vid(2)))  # durable: supersedes
    r = await client.get("/objects/version", params={"incarnation": INC, "key": "k",
                                                     "version_id": vid(1)})
    assert r.status_code == 404
    conn = sqlite3.connect(data_dir / INDEX_FILE)
    try:
        left = conn.execute("SELECT COUNT(*) FROM version_attributes").fetchone()[0]
    finally:
        conn.close()
    assert left == 0
