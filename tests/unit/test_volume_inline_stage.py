"""In-memory stages (`PUT /stage/{id}?inline=1`): no file, bounded, committed in SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.test_volume_objects import (
    aid,
    commit_body,
    fragment_path,
    latest,
    staged_files,
    vid,
)
from tests.unit.volume_support import running_app
from volume_server import staging
from volume_server.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app_client(data_dir: Path) -> AsyncIterator[tuple[Store, httpx.AsyncClient]]:
    async with running_app(data_dir) as (app, c):
        yield app.state.store, c


async def stage_inline(client: httpx.AsyncClient, stage_id: str, data: bytes,
                       **params: str | int) -> httpx.Response:
    return await client.put(f"/stage/{stage_id}", content=data,
                            params={"inline": "1", "size": len(data), **params})


def inline_rows(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "index.sqlite") as conn:
        return [r[0] for r in conn.execute("SELECT archive_id FROM inline_archives")]


async def test_inline_stage_commits_without_a_file(app_client, data_dir: Path) -> None:
    store, client = app_client
    archive = aid("small", vid(1))
    r = await stage_inline(client, "mem", b"tiny fragment")
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 13 and r.json()["stage_id"] == "mem"
    assert staged_files(data_dir) == [] and "mem" in store.memory
    body = commit_body("small", vid(1), stage_id="mem", archive_id=archive, inline=True,
                       archives=[archive])
    r = await client.post("/objects/commit", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["clock"] == vid(1)
    assert "mem" not in store.memory and store.memory.used == 0
    assert not fragment_path(data_dir, archive).exists()
    assert inline_rows(data_dir) == [archive]
    assert (await client.get(f"/archives/{archive}")).content == b"tiny fragment"
    assert (await latest(client, "small"))["version_id"] == vid(1)
    # a retry after success is a no-op; the missing stage does not matter any more
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    # a re-staged copy for the committed version is discarded
    await stage_inline(client, "again", b"tiny fragment")
    body["stage_id"] = "again"
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert len(store.memory) == 0 and store.memory.used == 0


async def test_superseding_inline_version_drops_its_row(app_client, data_dir: Path) -> None:
    _, client = app_client
    for n in (1, 2):
        archive = aid("k", vid(n))
        await stage_inline(client, f"s{n}", b"v%d" % n)
        body = commit_body("k", vid(n), stage_id=f"s{n}", archive_id=archive, inline=True,
                           archives=[archive])
        assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert inline_rows(data_dir) == [aid("k", vid(2))]
    assert (await client.get(f"/archives/{aid('k', vid(1))}")).status_code == 404


async def test_delete_stage_drops_memory(app_client, data_dir: Path) -> None:
    store, client = app_client
    await stage_inline(client, "gone", b"x" * 100)
    assert store.memory.used == 100
    assert (await client.delete("/stage/gone")).status_code == 204
    assert "gone" not in store.memory and store.memory.used == 0
    body = commit_body("k", vid(1), stage_id="gone", archive_id=aid("k", vid(1)), inline=True)
    assert (await client.post("/objects/commit", json=body)).status_code == 404
    assert (await client.delete("/stage/gone")).status_code == 204


async def test_inline_stage_limits(app_client, data_dir: Path) -> None:
    store, client = app_client
    big = b"x" * (staging.MAX_MEMORY_STAGE + 1)
    r = await stage_inline(client, "big", big)
    assert r.status_code == 400 and "error" in r.json()
    r = await client.put("/stage/big", content=big, params={"inline": "1"})  # no size
    assert r.status_code == 400
    r = await client.put("/stage/odd", content=b"x", params={"inline": "yes"})
    assert r.status_code == 400
    r = await stage_inline(client, "short", b"x" * 10, size=11)
    assert r.status_code == 400
    r = await stage_inline(client, "long", b"x" * 12, size=11)
    assert r.status_code == 400
    assert store.memory.used == 0 and len(store.memory) == 0
    store.memory.max_total = 250
    assert (await stage_inline(client, "a", b"a" * 200)).status_code == 200
    r = await stage_inline(client, "b", b"b" * 100)
    assert r.status_code == 503 and "error" in r.json()
    assert store.memory.used == 200
    # while a replacement arrives both copies count; afterwards only the new one
    store.memory.max_total = 350
    assert (await stage_inline(client, "a", b"c" * 150)).status_code == 200
    assert store.memory.used == 150 and store.memory.get("a") == b"c" * 150
    assert staged_files(data_dir) == []


async def test_unclaimed_stages_expire() -> None:
    now = [0.0]
    memory = staging.MemoryStages(ttl=10.0, clock=lambda: now[0])

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    await memory.receive("old", body(b"1234"))
    now[0] = 5.0
    await memory.receive("new", body(b"56"))
    now[0] = 10.0
    memory.expire()
    assert "old" not in memory and "new" in memory and memory.used == 2
    now[0] = 15.0
    await memory.receive("later", body(b"7"))
    assert "new" not in memory and memory.used == 1


async def test_in_memory_stage_being_received_is_409() -> None:
    memory = staging.MemoryStages()
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a"
        await gate.wait()
        yield b"b"

    first = asyncio.create_task(memory.receive("busy", slow()))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    async def other() -> AsyncIterator[bytes]:
        yield b"z"

    with pytest.raises(staging.StageBusy):
        await memory.receive("busy", other())
    gate.set()
    assert await first == 2 and memory.get("busy") == b"ab"


async def test_memory_stage_committed_as_file_or_part(app_client, data_dir: Path) -> None:
    store, client = app_client
    archive = aid("k", vid(1))
    await stage_inline(client, "m1", b"file after all")
    body = commit_body("k", vid(1), stage_id="m1", archive_id=archive, archives=[archive])
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert fragment_path(data_dir, archive).read_bytes() == b"file after all"
    assert staged_files(data_dir) == [] and len(store.memory) == 0
    upload = {"incarnation": "inc1", "bucket": "b", "key": "mp", "upload_id": "u1",
              "initiated": 1.0, "owner": "o", "manifest": {}}
    assert (await client.put("/uploads/u1", json=upload)).status_code == 200
    part = aid("mp", "u1", 1)
    await stage_inline(client, "p1", b"part bytes")
    r = await client.post("/parts/commit", json={"upload_id": "u1", "part_number": 1,
                                                 "stage_id": "p1", "archive_id": part,
                                                 "manifest": {}})
    assert r.status_code == 200, r.text
    assert fragment_path(data_dir, part).read_bytes() == b"part bytes"
    assert staged_files(data_dir) == [] and len(store.memory) == 0


async def test_file_and_memory_stages_replace_each_other(app_client, data_dir: Path) -> None:
    store, client = app_client
    await client.put("/stage/x", content=b"on disk")
    await stage_inline(client, "x", b"in memory")
    assert staged_files(data_dir) == [] and store.memory.get("x") == b"in memory"
    await client.put("/stage/x", content=b"on disk again")
    assert staged_files(data_dir) == ["x"] and "x" not in store.memory
    archive = aid("k", vid(1))
    body = commit_body("k", vid(1), stage_id="x", archive_id=archive, inline=True,
                       archives=[archive])
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert (await client.get(f"/archives/{archive}")).content == b"on disk again"
    assert staged_files(data_dir) == []
