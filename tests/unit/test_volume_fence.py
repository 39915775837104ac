"""Epoch fencing on one volume: every write placed by the ring (stage, object and part
commits, repairs, in-place attribute changes, version deletes, upload records, claims and
Complete) is refused 409 StaleEpoch once the volume has seen a newer epoch; reads,
deletes and letting go of a claim are not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.test_volume_objects import commit_body, vid
from tests.unit.volume_support import INC, running

pytestmark = pytest.mark.anyio

UPLOAD = {"incarnation": INC, "bucket": "b", "key": "k", "upload_id": "u1",
          "initiated": 1.0, "owner": "alice", "manifest": {}}

# (method, path, JSON body or raw bytes): each a write a lagging gateway could send.
PLACED_BY_THE_RING = [
    ("PUT", "/stage/st-fence", b"fragment"),
    ("POST", "/objects/commit", {}),
    ("POST", "/objects/commits", {"commits": [{}]}),
    ("POST", "/parts/commit", {}),
    ("POST", "/objects/repair", {}),
    ("POST", "/objects/attribute", {}),
    ("POST", "/objects/forget", {}),
    ("PUT", "/uploads/u2", {**UPLOAD, "upload_id": "u2"}),
    ("POST", "/uploads/u1/claim", {"token": "t1", "op": "complete"}),
    ("POST", "/uploads/u1/complete", {"token": "t1"}),
]


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def epoch(n: int) -> dict[str, str]:
    return {"x-shardgate-epoch": str(n)}


async def send(client: httpx.AsyncClient, method: str, path: str, body: object,
               n: int) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.request(method, path, content=body, headers=epoch(n))
    return await client.request(method, path, json=body, headers=epoch(n))


@pytest.mark.parametrize(("method", "path", "body"), PLACED_BY_THE_RING,
                         ids=[p for _, p, _ in PLACED_BY_THE_RING])
async def test_a_write_of_an_older_epoch_is_refused_and_changes_nothing(
        client: httpx.AsyncClient, method: str, path: str, body: object) -> None:
    created = await client.put("/uploads/u1", json=UPLOAD, headers=epoch(3))
    assert created.json() == {"stored": True}
    refused = await send(client, method, path, body, 2)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "StaleEpoch" and refused.json()["epoch"] == 3
    assert (await client.get("/uploads/u2")).status_code == 404
    # The claim the stale request asked for was not taken: a current one gets it.
    claim = await client.post("/uploads/u1/claim", json={"token": "t9", "op": "abort"},
                              headers=epoch(3))
    assert claim.status_code == 200, claim.text


async def test_reads_deletes_and_releases_pass_whatever_the_epoch(
        client: httpx.AsyncClient) -> None:
    assert (await client.put("/uploads/u1", json=UPLOAD, headers=epoch(5))).status_code \
        == 200
    claim = await client.post("/uploads/u1/claim", json={"token": "t1", "op": "abort"},
                              headers=epoch(5))
    assert claim.status_code == 200
    assert (await client.get("/uploads/u1", headers=epoch(1))).status_code == 200
    released = await client.delete("/uploads/u1/claim", params={"token": "t1"},
                                   headers=epoch(1))
    assert released.status_code in (200, 204), released.text
    # Without the header (tools) a write passes; with the current epoch it passes too.
    assert (await client.put("/stage/st-tool", content=b"x")).status_code == 200
    assert (await client.put("/stage/st-now", content=b"x", headers=epoch(5))).status_code \
        == 200


async def test_the_newest_epoch_seen_is_learned_from_any_write(
        client: httpx.AsyncClient) -> None:
    assert (await client.put("/stage/st-a", content=b"x", headers=epoch(7))).status_code \
        == 200
    stale = await client.put("/uploads/u1", json=UPLOAD, headers=epoch(6))
    assert stale.status_code == 409 and stale.json()["epoch"] == 7
    assert (await client.put("/uploads/u1", json=UPLOAD, headers=epoch(8))).status_code \
        == 200
    assert (await client.put("/stage/st-b", content=b"x", headers=epoch(7))).json()[
        "code"] == "StaleEpoch"


async def test_a_stale_attribute_change_or_version_delete_leaves_the_version_as_it_was(
        client: httpx.AsyncClient) -> None:
    committed = await client.post("/objects/commit", json=commit_body("k", vid(1)),
                                  headers=epoch(4))
    assert committed.status_code == 200, committed.text
    version = {"incarnation": INC, "key": "k", "version_id": vid(1)}
    tags = {**version, "name": "tags", "stamp": "s1", "value": {"a": "1"}}
    assert (await client.post("/objects/attribute", json=tags, headers=epoch(3))
            ).json()["code"] == "StaleEpoch"
    for durable in (False, True):
        refused = await client.post("/objects/forget", json={**version, "durable": durable},
                                    headers=epoch(3))
        assert refused.json()["code"] == "StaleEpoch"
    row = await client.get("/objects/version", params=version)
    assert row.status_code == 200 and row.json()["deleted"] is False
    assert not row.json()["attributes"]
    # The same change from the current epoch is kept.
    assert (await client.post("/objects/attribute", json=tags, headers=epoch(4))
            ).json()["found"] is True
