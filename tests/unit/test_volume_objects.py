"""Stage -> commit -> read on one volume server, and everything that must leave no trace."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardgate.manifest import archive_id
from tests.unit.volume_support import INC, VOLUME, auth, config, running
from volume_server.app import create_app

pytestmark = pytest.mark.anyio

@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def aid(key: str, version: str, index: int = 0) -> str:
    return archive_id(INC, key, version, index)


def vid(n: int) -> str:
    return f"{n:032x}"


def commit_body(key: str, version: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "incarnation": INC, "key": key, "version_id": version, "deleted": False,
        "manifest": {"key": key, "version_id": version},
        "summary": {"size": 3, "etag": "e", "last_modified": 1.5, "owner": "o"},
        "stage_id": None, "archive_id": None, "inline": False, "archives": [], "heal": [],
        "durable": True,  # as after the durable notice; pending rows have their own tests
    }
    body.update(extra)
    return body


async def put_version(client: httpx.AsyncClient, key: str, version: str, data: bytes,
                      **extra: Any) -> str:
    archive = aid(key, version)
    stage = f"st-{archive[:8]}"
    r = await client.put(f"/stage/{stage}", content=data, params={"size": len(data)})
    assert r.status_code == 200, r.text
    assert without_clock(r.json()) == {"stage_id": stage, "size": len(data)}
    body = commit_body(key, version, stage_id=stage, archive_id=archive, archives=[archive],
                       **extra)
    r = await client.post("/objects/commit", json=body)
    assert r.status_code == 200, r.text
    assert without_clock(r.json())["committed"] is True
    return archive


def without_clock(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer minus its "clock" field (checked on its own in test_clock_*)."""
    assert isinstance(answer.pop("clock"), str)
    return answer


async def latest(client: httpx.AsyncClient, key: str) -> dict[str, Any] | None:
    """The newest row the volume lists for `key` (its "durable" flag left out)."""
    r = await client.get("/objects/latest", params={"incarnation": INC, "key": key})
    assert r.status_code == 200, r.text
    versions = without_clock(r.json())["versions"]
    if not versions:
        return None
    return {k: v for k, v in versions[0].items() if k != "durable"}


def fragment_path(data_dir: Path, archive: str) -> Path:
    return data_dir / "fragments" / archive[:2] / archive[2:4] / archive


def staged_files(data_dir: Path) -> list[str]:
    return sorted(os.listdir(data_dir / "staging"))


async def test_stage_commit_latest_and_ranged_read(client: httpx.AsyncClient,
                                                   data_dir: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: several read chunks
    archive = await put_version(client, "a/b.bin", vid(1), data)
    assert fragment_path(data_dir, archive).read_bytes() == data
    assert staged_files(data_dir) == []
    assert await latest(client, "a/b.bin") == {
        "version_id": vid(1), "deleted": False,
        "manifest": {"key": "a/b.bin", "version_id": vid(1)}, "attributes": {}}

    r = await client.get(f"/archives/{archive}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data))

    r = await client.get(f"/archives/{archive}", headers={"range": "bytes=1000-300000"})
    assert r.status_code == 206
    assert r.content == data[1000:300001]
    assert r.headers["content-range"] == f"bytes 1000-300000/{len(data)}"
    assert r.headers["content-length"] == str(299001)

    r = await client.get(f"/archives/{archive}", headers={"range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = await client.get(f"/archives/{archive}", headers={"range": f"bytes={len(data) - 5}-"})
    assert r.content == data[-5:]
    r = await client.get(f"/archives/{archive}", headers={"range": f"bytes=0-{len(data) * 2}"})
    assert r.status_code == 206 and r.content == data

    r = await client.get(f"/archives/{archive}", headers={"range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    r = await client.get(f"/archives/{archive}", headers={"range": "bytes=0-1,5-6"})
    assert r.status_code == 400

    r = await client.head(f"/archives/{archive}", headers={"range": "bytes=0-9"})
    assert r.status_code == 206 and r.headers["content-length"] == "10"


async def test_missing_rows_and_archives_are_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/objects/latest", params={"incarnation": INC, "key": "nope"})
    assert r.status_code == 200 and r.json()["versions"] == []
    assert (await client.get(f"/archives/{aid('nope', vid(1))}")).status_code == 404
    r = await client.post("/objects/commit", json=commit_body(
        "k", vid(1), stage_id="never-staged", archive_id=aid("k", vid(1))))
    assert r.status_code == 404


async def test_inline_commit_keeps_bytes_in_sqlite(client: httpx.AsyncClient,
                                                   data_dir: Path) -> None:
    archive = aid("small", vid(1))
    await client.put("/stage/inl", content=b"tiny fragment")
    body = commit_body("small", vid(1), stage_id="inl", archive_id=archive, inline=True,
                       archives=[archive])
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert staged_files(data_dir) == []
    assert not fragment_path(data_dir, archive).exists()
    assert (await client.get(f"/archives/{archive}")).content == b"tiny fragment"
    r = await client.get(f"/archives/{archive}", headers={"range": "bytes=5-12"})
    assert r.status_code == 206 and r.content == b"fragment"
    assert r.headers["content-range"] == "bytes 5-12/13"
    # superseding the inline version removes its row too
    await put_version(client, "small", vid(2), b"next")
    assert (await client.get(f"/archives/{archive}")).status_code == 404


async def test_abort_removes_staged_file(client: httpx.AsyncClient, data_dir: Path) -> None:
    await client.put("/stage/s-abort", content=b"x" * 100)
    assert staged_files(data_dir) == ["s-abort"]
    assert (await client.delete("/stage/s-abort")).status_code == 204
    assert staged_files(data_dir) == []
    assert (await client.delete("/stage/s-abort")).status_code == 204


async def test_short_or_long_body_leaves_nothing(client: httpx.AsyncClient,
                                                 data_dir: Path) -> None:
    r = await client.put("/stage/s-short", content=b"x" * 10, params={"size": 11})
    assert r.status_code == 400 and "error" in r.json()
    r = await client.put("/stage/s-long", content=b"x" * 12, params={"size": 11})
    assert r.status_code == 400
    assert staged_files(data_dir) == []


async def test_stage_id_being_written_is_409(client: httpx.AsyncClient,
                                             data_dir: Path) -> None:
    (data_dir / "staging" / "busy.part").write_bytes(b"in flight")
    r = await client.put("/stage/busy", content=b"x")
    assert r.status_code == 409 and "error" in r.json()
    assert (data_dir / "staging" / "busy.part").read_bytes() == b"in flight"


async def test_disconnect_mid_body_removes_partial(data_dir: Path) -> None:
    app = create_app(config(), VOLUME, data_dir)
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"a" * 70000, "more_body": True},
                {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.1"},
             "http_version": "1.1", "method": "PUT", "scheme": "http",
             "path": "/stage/s-gone", "raw_path": b"/stage/s-gone", "root_path": "",
             "query_string": b"size=1000000", "server": ("t", 80), "client": ("c", 1),
             "headers": [(b"authorization", auth()["authorization"].encode())]}
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert staged_files(data_dir) == []


async def test_stage_ids_and_archive_ids_are_checked(client: httpx.AsyncClient) -> None:
    for bad in (".hidden", "x.part", "a" * 97, "sp ace"):
        assert (await client.put(f"/stage/{bad}", content=b"x")).status_code == 400, bad
    for bad in ("ABCDEF" + "0" * 34, "0" * 39, "g" * 40, "0" * 41, "...."):
        assert (await client.get(f"/archives/{bad}")).status_code == 400, bad
        assert (await client.delete(f"/archives/{bad}")).status_code == 400, bad
    # an encoded slash never reaches a handler at all
    assert (await client.get("/archives/..%2F..%2Fetc%2Fpasswd")).status_code == 404
    body = commit_body("k", vid(1), stage_id="s", archive_id="../../../etc/passwd")
    assert (await client.post("/objects/commit", json=body)).status_code == 400
    body = commit_body("k", vid(1), archives=["not-an-id"])
    assert (await client.post("/objects/commit", json=body)).status_code == 400
    assert (await client.post("/objects/commit", content=b"{nope")).status_code == 400
    assert (await client.post("/objects/commit", json={"key": "k"})).status_code == 400


async def test_newer_version_deletes_older_archive(client: httpx.AsyncClient,
                                                   data_dir: Path) -> None:
    old = await put_version(client, "k", vid(1), b"old")
    new = await put_version(client, "k", vid(2), b"new!")
    assert not fragment_path(data_dir, old).exists()
    assert fragment_path(data_dir, new).read_bytes() == b"new!"
    assert (await latest(client, "k"))["version_id"] == vid(2)
    # a late commit of an older version never wins and leaves no file behind
    late = await put_version(client, "k", vid(0), b"late")
    assert not fragment_path(data_dir, late).exists()
    assert (await latest(client, "k"))["version_id"] == vid(2)


async def test_shared_archive_survives_superseding(client: httpx.AsyncClient,
                                                   data_dir: Path) -> None:
    shared = await put_version(client, "k1", vid(1), b"shared")
    body = commit_body("k2", vid(1), archives=[shared])
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    await put_version(client, "k1", vid(2), b"other")
    assert fragment_path(data_dir, shared).exists()


async def test_versioned_commit_keeps_older_rows(client: httpx.AsyncClient,
                                                 data_dir: Path) -> None:
    old = await put_version(client, "k", vid(1), b"old", versioned=True)
    await put_version(client, "k", vid(2), b"new", versioned=True)
    assert fragment_path(data_dir, old).exists()
    assert (await latest(client, "k"))["version_id"] == vid(2)


async def test_commit_retry_is_idempotent(client: httpx.AsyncClient, data_dir: Path) -> None:
    archive = await put_version(client, "k", vid(1), b"data")
    body = commit_body("k", vid(1), stage_id=f"st-{archive[:8]}", archive_id=archive,
                       archives=[archive])
    assert (await client.post("/objects/commit", json=body)).json()["committed"] is True
    await client.put("/stage/again", content=b"data")
    body["stage_id"] = "again"
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert staged_files(data_dir) == []
    assert fragment_path(data_dir, archive).read_bytes() == b"data"


async def test_tombstone_rows(client: httpx.AsyncClient, data_dir: Path) -> None:
    archive = await put_version(client, "gone", vid(1), b"data")
    tomb = commit_body("gone", vid(2), deleted=True, summary={"last_modified": 2.0})
    assert (await client.post("/objects/commit", json=tomb)).status_code == 200
    found = await latest(client, "gone")
    assert found["deleted"] is True and found["version_id"] == vid(2)
    assert not fragment_path(data_dir, archive).exists()
    # an older write arriving late cannot resurrect the key
    await put_version(client, "gone", vid(1), b"data")
    assert (await latest(client, "gone"))["deleted"] is True


async def test_delete_archive_is_idempotent(client: httpx.AsyncClient,
                                            data_dir: Path) -> None:
    archive = await put_version(client, "k", vid(1), b"data")
    assert (await client.delete(f"/archives/{archive}")).status_code == 204
    assert not fragment_path(data_dir, archive).exists()
    assert (await client.delete(f"/archives/{archive}")).status_code == 204


async def test_concurrent_commits_are_batched_safely(client: httpx.AsyncClient,
                                                     data_dir: Path) -> None:
    async def one(n: int) -> int:
        key = f"key{n % 10}"
        archive = aid(key, vid(n))
        await client.put(f"/stage/s{n}", content=b"%d" % n)
        r = await client.post("/objects/commit", json=commit_body(
            key, vid(n), stage_id=f"s{n}", archive_id=archive, archives=[archive]))
        return r.status_code

    assert await asyncio.gather(*(one(n) for n in range(1, 101))) == [200] * 100
    for k in range(10):
        newest = max(n for n in range(1, 101) if n % 10 == k)
        assert (await latest(client, f"key{k}"))["version_id"] == vid(newest)
    files = [f for _, _, names in os.walk(data_dir / "fragments") for f in names]
    assert len(files) == 10
    assert staged_files(data_dir) == []


async def test_clock_is_the_highest_committed_version(data_dir: Path) -> None:
    """Stage, commit and latest answers (for a missing key too) carry the volume's clock."""
    async def clock_of(c: httpx.AsyncClient) -> tuple[str, str, str]:
        staged = (await c.put("/stage/probe", content=b"x")).json()["clock"]
        await c.delete("/stage/probe")
        r = await c.get("/objects/latest", params={"incarnation": INC, "key": "k"})
        missing = await c.get("/objects/latest", params={"incarnation": INC, "key": "none"})
        assert missing.status_code == 200 and missing.json()["versions"] == []
        return staged, r.json()["clock"], missing.json()["clock"]

    async with running(data_dir) as c:
        assert await clock_of(c) == ("", "", "")
        r = await c.post("/objects/commit", json=commit_body("k", vid(5)))
        assert (r.json()["committed"], r.json()["clock"]) == (True, vid(5))
        # a late commit of an older version does not move the clock back
        r = await c.post("/objects/commit", json=commit_body("k", vid(3)))
        assert (r.json()["committed"], r.json()["clock"]) == (True, vid(5))
        r = await c.post("/objects/commit", json=commit_body("other", vid(4), deleted=True))
        assert r.json()["clock"] == vid(5)
        assert await clock_of(c) == (vid(5),) * 3
        r = await c.post("/objects/commit", json=commit_body("other", vid(9), deleted=True))
        assert r.json()["clock"] == vid(9)
    async with running(data_dir) as c:
        assert await clock_of(c) == (vid(9),) * 3  # read back from SQLite at startup
