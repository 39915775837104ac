"""Volume answers that save the gateway round trips: `latest` carrying a small object's
inline fragments, `latest` of many keys in one request, commits and durable notices in
batches."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.unit.test_volume_objects import aid, commit_body, vid
from tests.unit.volume_support import INC, running

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def inline_manifest(key: str, version: str, inline: bool = True) -> dict:
    return {"key": key, "version_id": version,
            "parts": [{"number": 1, "size": 10, "inline": inline}]}


async def commit_inline(client: httpx.AsyncClient, key: str, version: str, data: bytes,
                        **extra: object) -> str:
    archive = aid(key, version)
    stage = f"st-{archive[:8]}"
    assert (await client.put(f"/stage/{stage}", content=data,
                             params={"inline": "1"})).status_code == 200
    body = commit_body(key, version, stage_id=stage, archive_id=archive, inline=True,
                       archives=[archive], manifest=inline_manifest(key, version), **extra)
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    return archive


async def latest_rows(client: httpx.AsyncClient, key: str, inline: str | None = "1"
                      ) -> list[dict]:
    params = {"incarnation": INC, "key": key}
    if inline is not None:
        params["inline"] = inline
    r = await client.get("/objects/latest", params=params)
    assert r.status_code == 200, r.text
    return r.json()["versions"]


async def test_latest_carries_the_newest_rows_inline_fragment(client) -> None:
    archive = await commit_inline(client, "small", vid(1), b"fragment one")
    rows = await latest_rows(client, "small")
    assert {a: base64.b64decode(d) for a, d in rows[0]["inline"].items()} == {
        archive: b"fragment one"}
    assert "inline" not in (await latest_rows(client, "small", inline=None))[0]
    assert "inline" not in (await latest_rows(client, "small", inline="0"))[0]
    r = await client.get("/objects/latest", params={"incarnation": INC, "key": "small",
                                                    "inline": "yes"})
    assert r.status_code == 400


async def test_only_the_newest_row_and_only_inline_parts(client) -> None:
    await commit_inline(client, "k", vid(1), b"old", durable=True)
    newer = await commit_inline(client, "k", vid(2), b"new", durable=False)
    rows = await latest_rows(client, "k")
    assert [r["version_id"] for r in rows] == [vid(2), vid(1)]
    assert list(rows[0]["inline"]) == [newer] and "inline" not in rows[1]
    # a stored (not inline) archive is never carried
    r = await client.put("/stage/big", content=b"stored bytes")
    assert r.status_code == 200
    archive = aid("big", vid(3))
    body = commit_body("big", vid(3), stage_id="big", archive_id=archive, archives=[archive],
                       manifest=inline_manifest("big", vid(3), inline=False))
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    assert "inline" not in (await latest_rows(client, "big"))[0]
    # nor a delete marker's row
    marker = commit_body("k", vid(4), deleted=True, manifest={"key": "k", "parts": []})
    assert (await client.post("/objects/commit", json=marker)).status_code == 200
    assert "inline" not in (await latest_rows(client, "k"))[0]


async def test_durable_notices_in_a_batch(client) -> None:
    for n in (1, 2):
        await commit_inline(client, f"n{n}", vid(n), b"x", durable=False)
    notices = [{"incarnation": INC, "key": f"n{n}", "version_id": vid(n), "heal": []}
               for n in (1, 2)]
    notices.append({"incarnation": INC, "key": "absent", "version_id": vid(9), "heal": []})
    r = await client.post("/objects/durable", json={"notices": notices})
    assert r.status_code == 200 and r.json()["found"] == [True, True, False]
    for n in (1, 2):
        assert (await latest_rows(client, f"n{n}"))[0]["durable"] is True
    for bad in ([], ["not an object"], [{"key": "no incarnation"}]):
        r = await client.post("/objects/durable", json={"notices": bad})
        assert r.status_code == 400, (bad, r.text)


async def test_latest_of_many_keys_in_one_request(client) -> None:
    small = await commit_inline(client, "small", vid(1), b"fragment one")
    await commit_inline(client, "other", vid(2), b"two")
    r = await client.post("/objects/latest", json={"keys": [
        [INC, "small", True], [INC, "missing", True], [INC, "other", False]]})
    assert r.status_code == 200, r.text
    answer = r.json()
    single = (await client.get("/objects/latest", params={"incarnation": INC,
                                                          "key": "small"})).json()
    assert answer["clock"] == single["clock"] >= vid(2)
    assert answer["rebuilding"] == single["rebuilding"]
    small_rows, missing_rows, other_rows = answer["answers"]
    assert small_rows == await latest_rows(client, "small")
    assert {a: base64.b64decode(d) for a, d in small_rows[0]["inline"].items()} == {
        small: b"fragment one"}
    assert missing_rows == []
    assert [r["version_id"] for r in other_rows] == [vid(2)]
    assert "inline" not in other_rows[0]


@pytest.mark.parametrize("keys", [
    None, "k", [["i", "k"]], [["i", "k", "yes"]], [["", "k", True]], [["i", "", True]],
    [[INC, "k", True]] * 1001])
async def test_latest_of_many_keys_refuses_bad_input(client, keys) -> None:
    r = await client.post("/objects/latest", json={} if keys is None else {"keys": keys})
    assert r.status_code == 400, r.text
    assert "error" in r.json()


async def test_commits_in_one_request_are_answered_each_alone(client) -> None:
    await client.post("/objects/commit", json=commit_body("fenced", vid(3), durable=False))
    data = base64.b64encode(b"inline bytes").decode()
    archive = aid("one-trip", vid(4))
    commits = [
        commit_body("plain", vid(4)),
        commit_body("one-trip", vid(4), archive_id=archive, archives=[archive],
                    inline=True, data=data, manifest=inline_manifest("one-trip", vid(4))),
        commit_body("fenced", vid(5), durable=False, expect_newest=vid(1)),  # vid(3) is newer
        commit_body("bad", "", durable=False),
        commit_body("missing-stage", vid(6), stage_id="st-nothing", archive_id=aid("m", vid(6)),
                    archives=[aid("m", vid(6))]),
    ]
    r = await client.post("/objects/commits", json={"commits": commits})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["clock"] >= vid(4) and "rebuilding" in answer
    results = answer["results"]
    assert results[:2] == [{"committed": True}] * 2
    assert [(x["status"], bool(x["error"])) for x in results[2:]] == [
        (409, True), (400, True), (404, True)]
    assert [row["version_id"] for row in await latest_rows(client, "plain")] == [vid(4)]
    rows = await latest_rows(client, "one-trip")
    assert base64.b64decode(rows[0]["inline"][archive]) == b"inline bytes"
    assert [row["version_id"] for row in await latest_rows(client, "fenced")] == [vid(3)]
    for bad in ({}, {"commits": "x"}, {"commits": ["not a body"]},
                {"commits": [commit_body("k", vid(1))] * 257}):
        r = await client.post("/objects/commits", json=bad)
        assert r.status_code == 400, (bad, r.text)
