"""Key claims and the newest-version fence on one volume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.test_volume_objects import aid, commit_body, fragment_path, vid
from tests.unit.volume_support import INC, running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


async def claim(client: httpx.AsyncClient, token: str, ttl: float = 30) -> bool:
    r = await client.post("/objects/claim", json={"incarnation": INC, "key": "k",
                                                  "token": token, "ttl": ttl})
    assert r.status_code == 200, r.text
    return r.json()["granted"]


async def test_one_holder_at_a_time(client):
    assert await claim(client, "a")
    assert not await claim(client, "b")
    assert await claim(client, "a")  # the holder renews
    await client.post("/objects/release", json={"incarnation": INC, "key": "k",
                                                "token": "b"})  # not b's: no effect
    assert not await claim(client, "b")
    await client.post("/objects/release", json={"incarnation": INC, "key": "k",
                                                "token": "a"})
    assert await claim(client, "b")


async def test_an_expired_claim_is_taken_over(client):
    assert await claim(client, "a", ttl=0.0)
    assert await claim(client, "b")


async def test_fenced_commit_refused_when_a_newer_version_is_here(client, data_dir):
    await client.post("/objects/commit", json=commit_body("k", vid(1)))
    await client.post("/objects/commit", json=commit_body("k", vid(3), durable=False))
    stage = "st-fence0001"
    r = await client.put(f"/stage/{stage}", content=b"abc", params={"size": 3})
    assert r.status_code == 200
    archive = aid("k", vid(4))
    body = commit_body("k", vid(4), stage_id=stage, archive_id=archive, archives=[archive],
                       durable=False, expect_newest=vid(1))
    r = await client.post("/objects/commit", json=body)
    assert r.status_code == 409, r.text
    assert not fragment_path(data_dir, archive).exists()  # nothing left of the refused one
    # vid(3) proven never acknowledged: the fence ignores it.
    r = await client.post("/objects/commit", json=commit_body(
        "k", vid(5), durable=False, expect_newest=vid(1), ignore=[vid(3)]))
    assert r.status_code == 200, r.text
