"""Multipart uploads on one volume: parts, claims, and Complete / Abort as compare-and-set.

Each test plays one interleaving of gateways racing on the same upload, step by step
through the volume API, and checks what is left on disk and in the index.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shardgate.manifest import archive_id
from tests.unit.volume_support import INC, running
from volume_server import uploads

pytestmark = pytest.mark.anyio

KEY = "big"


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def fragment_path(data_dir: Path, archive: str) -> Path:
    return data_dir / "fragments" / archive[:2] / archive[2:4] / archive


def fragments(data_dir: Path) -> set[str]:
    return {name for _, _, names in os.walk(data_dir / "fragments") for name in names}


def upload(upload_id: str, key: str = KEY, incarnation: str = INC,
           initiated: float = 1.0) -> dict[str, Any]:
    return {"incarnation": incarnation, "bucket": "b", "key": key, "upload_id": upload_id,
            "initiated": initiated, "owner": "alice", "manifest": {"content_type": "x/y"}}


async def create(client: httpx.AsyncClient, upload_id: str = "u1") -> None:
    r = await client.put(f"/uploads/{upload_id}", json=upload(upload_id))
    assert r.json() == {"stored": True}


async def part(client: httpx.AsyncClient, upload_id: str, number: int, tag: str,
               data: bytes | None = None) -> httpx.Response:
    """Stage and commit one part; the response of the commit."""
    archive = archive_id(INC, KEY, tag, 0)
    r = await client.put(f"/stage/p-{tag}", content=data or tag.encode())
    assert r.status_code == 200
    return await client.post("/parts/commit", json={
        "upload_id": upload_id, "part_number": number, "stage_id": f"p-{tag}",
        "archive_id": archive, "manifest": {"number": number, "tag": tag}})


async def committed_part(client: httpx.AsyncClient, upload_id: str, number: int, tag: str,
                         data: bytes | None = None) -> str:
    r = await part(client, upload_id, number, tag, data)
    assert r.status_code == 200, r.text
    assert r.json() == {"committed": True}
    return archive_id(INC, KEY, tag, 0)


def vid(n: int) -> str:
    return f"{n:032x}"


def complete_body(token: str, version: str, archives: list[str], **extra: Any
                  ) -> dict[str, Any]:
    body = {"token": token, "incarnation": INC, "key": KEY, "version_id": version,
            "deleted": False, "manifest": {"version_id": version, "upload_id": "u1"},
            "summary": {"size": 6, "etag": "x-2", "last_modified": 1.0, "owner": "alice"},
            "stage_id": None, "archive_id": None, "inline": False, "archives": archives,
            "heal": [], "durable": True}
    body.update(extra)
    return body


async def claim(client: httpx.AsyncClient, token: str, op: str,
                upload_id: str = "u1") -> int:
    r = await client.post(f"/uploads/{upload_id}/claim", json={"token": token, "op": op})
    return r.status_code


async def newest_row(client: httpx.AsyncClient) -> dict[str, Any] | None:
    """The newest row the volume lists for KEY, or None."""
    r = await client.get("/objects/latest", params={"incarnation": INC, "key": KEY})
    assert r.status_code == 200, r.text
    versions = r.json()["versions"]
    return versions[0] if versions else None


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
    await create(client)
    first = await committed_part(client, "u1", 2, "t2")
    replaced = await committed_part(client, "u1", 1, "t1")
    again = await committed_part(client, "u1", 1, "t1b", b"part one, again")
    # the replaced archive stays, owned by the upload: a running Complete may name it
    assert fragment_path(data_dir, replaced).exists()
    parts = (await client.get("/uploads/u1/parts")).json()["parts"]
    assert parts == [
        {"part_number": 1, "archive_id": again, "manifest": {"number": 1, "tag": "t1b"}},
        {"part_number": 2, "archive_id": first, "manifest": {"number": 2, "tag": "t2"}}]
    assert (await client.get(f"/archives/{again}")).content == b"part one, again"
    # a retried part commit whose stage is already installed succeeds
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 1, "stage_id": "p-t1b", "archive_id": again,
        "manifest": {"number": 1, "tag": "t1b"}})
    assert r.status_code == 200
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 3, "stage_id": "nothing", "archive_id": again,
        "manifest": {}})
    assert r.status_code == 404
    r = await client.post("/parts/commit", json={
        "upload_id": "u1", "part_number": 0, "stage_id": "p", "archive_id": again})
    assert r.status_code == 400

    assert (await client.delete("/uploads/u1")).status_code == 204
    assert (await client.get("/uploads/u1")).status_code == 404
    assert (await client.get("/uploads/u1/parts")).json() == {"parts": []}
    assert fragments(data_dir) == set()
    # a second abort finds nothing: the gateway counts it as "no such upload"
    assert (await client.delete("/uploads/u1")).status_code == 404
    assert (await client.delete("/uploads/u1", params={"keep_archives": 1})).status_code == 400


async def test_part_committed_after_abort_is_refused_and_leaves_nothing(
        client: httpx.AsyncClient, data_dir: Path) -> None:
    await create(client)
    await committed_part(client, "u1", 1, "a1")
    assert (await client.delete("/uploads/u1")).status_code == 204
    r = await part(client, "u1", 2, "late")
    assert r.status_code == 404 and "no upload" in r.json()["error"]
    assert fragments(data_dir) == set()
    assert os.listdir(data_dir / "staging") == []
    assert (await client.get("/uploads/u1/parts")).json() == {"parts": []}
    # never created here at all: the same answer
    assert (await part(client, "u9", 1, "never")).status_code == 404
    assert fragments(data_dir) == set()


async def test_claims_exclude_each_other(client: httpx.AsyncClient) -> None:
    assert await claim(client, "t-complete", "complete") == 404  # no upload yet
    await create(client)
    assert await claim(client, "t-complete", "complete") == 200
    assert await claim(client, "t-complete", "complete") == 200  # a retry keeps it
    assert await claim(client, "t-abort", "abort") == 409
    r = await client.delete("/uploads/u1", params={"token": "t-abort"})
    assert r.status_code == 409 and "running complete" in r.json()["error"]
    assert (await client.delete("/uploads/u1")).status_code == 409
    # releasing a claim one does not hold changes nothing
    r = await client.request("DELETE", "/uploads/u1/claim", params={"token": "t-abort"})
    assert r.status_code == 204
    assert await claim(client, "t-abort", "abort") == 409
    r = await client.request("DELETE", "/uploads/u1/claim", params={"token": "t-complete"})
    assert r.status_code == 204
    assert await claim(client, "t-abort", "abort") == 200
    r = await client.post("/uploads/u1/complete", json=complete_body("t-complete", vid(1), []))
    assert r.status_code == 409
    assert await newest_row(client) is None
    assert (await client.delete("/uploads/u1", params={"token": "t-abort"})).status_code == 204
    assert await claim(client, "t-abort", "abort") == 404
    r = await client.post("/uploads/u1/claim", json={"token": "t", "op": "steal"})
    assert r.status_code == 400
    r = await client.post("/uploads/u1/claim", json={"token": "t" * 97, "op": "abort"})
    assert r.status_code == 400
    assert (await client.request("DELETE", "/uploads/u1/claim")).status_code == 400


async def test_stale_claim_can_be_taken_over(client: httpx.AsyncClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    await create(client)
    assert await claim(client, "t-dead", "complete") == 200
    monkeypatch.setattr(uploads, "CLAIM_SECONDS", 0.0)
    assert await claim(client, "t-abort", "abort") == 200
    # the gateway that lost its claim cannot complete any more
    r = await client.post("/uploads/u1/complete", json=complete_body("t-dead", vid(1), []))
    assert r.status_code == 409
    assert await newest_row(client) is None


async def test_complete_is_a_compare_and_set(client: httpx.AsyncClient,
                                             data_dir: Path) -> None:
    await create(client)
    a1 = await committed_part(client, "u1", 1, "c1")
    a2 = await committed_part(client, "u1", 2, "c2")
    left_out = await committed_part(client, "u1", 3, "c3")
    assert await claim(client, "t", "complete") == 200
    # UploadPart of part 2 lands after the gateway chose the parts: the chosen (replaced)
    # archive is still the upload's, so Complete uses it and the newer one is freed
    newer = await committed_part(client, "u1", 2, "c2-again")
    r = await client.post("/uploads/u1/complete", json=complete_body("t", vid(5), [a1, a2]))
    assert r.status_code == 200, r.text
    assert r.json() == {"committed": True, "missing": [], "clock": vid(5)}
    assert fragments(data_dir) == {a1, a2}
    assert not fragment_path(data_dir, newer).exists()
    assert not fragment_path(data_dir, left_out).exists()
    assert (await client.get(f"/archives/{a2}")).content == b"c2"
    assert (await client.get("/uploads/u1")).status_code == 404
    assert (await client.get("/uploads/u1/parts")).json() == {"parts": []}
    found = await newest_row(client)
    assert found is not None
    assert found["version_id"] == vid(5) and found["manifest"]["upload_id"] == "u1"
    # a retried complete (its answer was lost) succeeds again and changes nothing
    r = await client.post("/uploads/u1/complete", json=complete_body("t", vid(5), [a1, a2]))
    assert r.status_code == 200 and r.json()["missing"] == []
    # the upload is over: Abort, claims and late parts find nothing, and free nothing
    assert (await client.delete("/uploads/u1")).status_code == 404
    assert await claim(client, "t2", "abort") == 404
    assert (await part(client, "u1", 4, "after")).status_code == 404
    r = await client.post("/uploads/u1/complete", json=complete_body("t", vid(6), [a1]))
    assert r.status_code == 404
    assert fragments(data_dir) == {a1, a2}
    # a later overwrite releases the completed upload's archives like any object's
    r = await client.post("/objects/commit", json={
        "incarnation": INC, "key": KEY, "version_id": vid(7), "deleted": True,
        "manifest": {}, "summary": {}, "durable": True})
    assert r.status_code == 200
    assert fragments(data_dir) == set()


async def test_complete_after_abort_is_refused(client: httpx.AsyncClient,
                                               data_dir: Path) -> None:
    old = archive_id(INC, KEY, "old", 0)
    await client.put("/stage/old", content=b"previous object")
    r = await client.post("/objects/commit", json={
        **complete_body("", vid(1), [old]), "stage_id": "old", "archive_id": old})
    assert r.status_code == 200, r.text
    await create(client)
    a1 = await committed_part(client, "u1", 1, "c1")
    assert await claim(client, "t-abort", "abort") == 200
    assert (await client.delete("/uploads/u1", params={"token": "t-abort"})).status_code == 204
    assert await claim(client, "t-complete", "complete") == 404
    r = await client.post("/uploads/u1/complete",
                          json=complete_body("t-complete", vid(2), [a1]))
    assert r.status_code == 404
    # the previous object is untouched and nothing of the upload is left
    found = await newest_row(client)
    assert found is not None
    assert found["version_id"] == vid(1)
    assert fragments(data_dir) == {old}


async def test_complete_supersedes_the_previous_object(client: httpx.AsyncClient,
                                                       data_dir: Path) -> None:
    old = archive_id(INC, KEY, "old", 0)
    await client.put("/stage/old", content=b"previous object")
    r = await client.post("/objects/commit", json={
        **complete_body("", vid(1), [old]), "stage_id": "old", "archive_id": old})
    assert r.status_code == 200
    await create(client)
    a1 = await committed_part(client, "u1", 1, "c1")
    assert await claim(client, "t", "complete") == 200
    r = await client.post("/uploads/u1/complete", json=complete_body("t", vid(2), [a1]))
    assert r.status_code == 200
    assert fragments(data_dir) == {a1}


async def test_complete_naming_an_archive_this_volume_missed(client: httpx.AsyncClient,
                                                             data_dir: Path) -> None:
    """The volume missed part 2 (or its commit is still on the way): it commits anyway,
    queues the archive for healing, and keeps the file should the late commit install it."""
    await create(client)
    a1 = await committed_part(client, "u1", 1, "c1")
    late = archive_id(INC, KEY, "c2", 0)
    assert await claim(client, "t", "complete") == 200
    r = await client.post("/uploads/u1/complete", json=complete_body("t", vid(3), [a1, late]))
    assert r.status_code == 200
    assert r.json()["missing"] == [late]
    heal = (await client.get("/heal")).json()["entries"]
    assert [(e["archive_id"], e["version_id"], e["reason"]) for e in heal] == [
        (late, vid(3), uploads.MISSING_REASON)]
    r = await part(client, "u1", 2, "c2")
    assert r.status_code == 404  # the upload is over ...
    assert fragments(data_dir) == {a1, late}  # ... but the object row owns the archive
    assert (await client.get(f"/archives/{late}")).content == b"c2"


async def test_complete_request_checks(client: httpx.AsyncClient) -> None:
    await create(client)
    a1 = await committed_part(client, "u1", 1, "c1")
    assert await claim(client, "t", "complete") == 200
    body = complete_body("t", vid(1), [a1])
    r = await client.post("/uploads/u1/complete", json={**body, "key": "other"})
    assert r.status_code == 409 and "another key" in r.json()["error"]
    r = await client.post("/uploads/u1/complete", json={**body, "stage_id": "s",
                                                          "archive_id": a1})
    assert r.status_code == 400
    r = await client.post("/uploads/u1/complete", json={k: v for k, v in body.items()
                                                         if k != "token"})
    assert r.status_code == 400
    r = await client.post("/uploads/u1/complete", json={**body, "archives": ["../x"]})
    assert r.status_code == 400
    assert (await client.get("/uploads/u1")).status_code == 200
    assert (await client.post("/uploads/u1/complete", json=body)).status_code == 200
