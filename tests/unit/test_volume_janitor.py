"""volume_server.janitor: retired archives freed after their grace, stale stages removed,
rows that never got their durable notice queued for heal."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from shardgate.config import DurabilitySpec
from tests.unit.test_volume_objects import aid, commit_body, fragment_path
from tests.unit.volume_support import running_app
from volume_server import janitor

pytestmark = pytest.mark.anyio


async def test_a_round_does_each_chore(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running_app(data_dir, grace=3600.0) as (app, client):
        store = app.state.store
        old, new = aid("k", "0001"), aid("k", "0002")
        for version, archive in (("0001", old), ("0002", new)):
            r = await client.put(f"/stage/s{version}", content=b"fragment " + version.encode())
            assert r.status_code == 200
            body = commit_body("k", version, stage_id=f"s{version}", archive_id=archive,
                               archives=[archive], durable=False)
            assert (await client.post("/objects/commit", json=body)).status_code == 200
        # the notice for 0002 arrives: 0001's archive is retired, still readable
        r = await client.post("/objects/durable", json={"incarnation": "inc1", "key": "k",
                                                         "version_id": "0002", "heal": []})
        assert r.json()["found"] is True
        assert (await client.get(f"/archives/{old}")).content == b"fragment 0001"
        assert list((await client.get("/retired")).json()["archives"]) == [old]
        assert (await janitor.run_once(store, DurabilitySpec()))["retired_freed"] == 0
        await store.index.write(_retire_until, old, 0.0)  # its grace is over
        (data_dir / "staging" / "left-behind").write_bytes(b"x")
        await client.put("/stage/pending", content=b"a stage nobody commits")
        r = await client.post("/objects/commit", json=commit_body("p", "0003",
                                                                    durable=False))
        assert r.status_code == 200

        await asyncio.sleep(0.05)
        done = await janitor.run_once(store, DurabilitySpec(unmarked_seconds=0.01))
        assert done == {"retired_freed": 1, "stages_removed": 2, "unmarked_queued": 1,
                        "claims_expired": 0}
        assert not fragment_path(data_dir, old).exists()
        assert fragment_path(data_dir, new).exists()
        assert os.listdir(data_dir / "staging") == []
        queued = (await client.get("/heal")).json()["entries"]
        assert [(e["key"], e["version_id"], e["reason"]) for e in queued] == [
            ("p", "0003", "no durable notice")]
        # a second round finds nothing more to do (the pending row is queued once)
        done = await janitor.run_once(store, DurabilitySpec(unmarked_seconds=0.01))
        assert done == {"retired_freed": 0, "stages_removed": 0, "unmarked_queued": 0,
                        "claims_expired": 0}


def _retire_until(conn, archive_id: str, until: float) -> None:  # noqa: ANN001
    conn.execute("UPDATE retired SET until=? WHERE archive_id=?", (until, archive_id))


async def test_a_late_retry_never_frees_an_archive_in_its_grace(tmp_path: Path) -> None:
    """A commit (or repair) of a version already superseded here lets go of its
    archives, but one retired for readers stays readable until its grace ends."""
    data_dir = tmp_path / "data"
    async with running_app(data_dir, grace=3600.0) as (_, client):
        old, new = aid("k", "0001"), aid("k", "0002")
        for version, archive in (("0001", old), ("0002", new)):
            await client.put(f"/stage/s{version}", content=b"fragment " + version.encode())
            body = commit_body("k", version, stage_id=f"s{version}", archive_id=archive,
                               archives=[archive])  # durable: 0002 retires 0001's archive
            assert (await client.post("/objects/commit", json=body)).status_code == 200
        late = commit_body("k", "0001", archives=[old])
        for route in ("/objects/commit", "/objects/repair"):
            assert (await client.post(route, json=late)).status_code == 200
            assert (await client.get(f"/archives/{old}")).content == b"fragment 0001"
        assert fragment_path(data_dir, old).exists()
