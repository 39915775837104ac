"""A volume's operator views: GET /status, /heal/versions, /heal?incarnation=, /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shardgate.manifest import archive_id
from tests.unit.volume_support import INC, running, running_app
from volume_server.metrics import route_operation

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


def heal_entry(key: str, version: str, index: int | None, incarnation: str = INC
               ) -> dict[str, Any]:
    return {"incarnation": incarnation, "key": key, "version_id": version,
            "archive_id": None if index is None else archive_id(incarnation, key, version,
                                                                 index),
            "index": index, "reason": "test"}


def row(key: str, version: str, durable: bool) -> dict[str, Any]:
    """A tombstone row: no archive to stage, which is all these counts need."""
    return {"incarnation": INC, "key": key, "version_id": version, "deleted": True,
            "manifest": {"key": key, "version_id": version},
            "summary": {"size": 0, "etag": "", "last_modified": 1.0, "owner": "o"},
            "stage_id": None, "archive_id": None, "inline": False, "archives": [],
            "heal": [], "durable": durable}


async def queue(client: httpx.AsyncClient, *entries: dict[str, Any]) -> None:
    r = await client.post("/heal", json={"entries": list(entries)})
    assert r.status_code == 200, r.text


async def test_status_counts_rows_heal_entries_and_disk(client: httpx.AsyncClient,
                                                        data_dir: Path) -> None:
    r = await client.get("/status")
    assert r.status_code == 200
    empty = r.json()
    assert empty["id"] == "v1" and empty["status"] == "ok"
    assert empty["data_dir"] == str(data_dir.resolve())
    assert (empty["objects"], empty["pending"], empty["retired"]) == (0, 0, 0)
    assert empty["heal"] == {"depth": 0, "versions": 0}
    disk = empty["disk"]
    assert disk["total"] > 0 and 0 <= disk["free"] <= disk["total"]
    assert 0 < disk["used"] <= disk["total"]

    for key, version, durable in (("a", "0001", True), ("b", "0001", False),
                                  ("c", "0001", False)):
        assert (await client.post("/objects/commit", json=row(key, version, durable))
                ).status_code == 200
    await queue(client, heal_entry("a", "0001", 1), heal_entry("a", "0001", 2),
                heal_entry("b", "0001", None))
    status = (await client.get("/status")).json()
    assert (status["objects"], status["pending"]) == (3, 2)
    assert status["heal"] == {"depth": 3, "versions": 2}


async def test_heal_versions_pool_indexes_and_say_when_cut(client: httpx.AsyncClient) -> None:
    await queue(client, heal_entry("a", "0001", 1), heal_entry("a", "0001", 4),
                heal_entry("a", "0001", 1), heal_entry("b", "0002", None),
                heal_entry("c", "0003", 0, incarnation="other"))
    listed = (await client.get("/heal/versions")).json()
    assert listed["truncated"] is False
    assert listed["versions"] == [
        {"incarnation": INC, "key": "a", "version_id": "0001", "entries": 3,
         "indexes": [1, 4]},
        {"incarnation": INC, "key": "b", "version_id": "0002", "entries": 1, "indexes": []},
        {"incarnation": "other", "key": "c", "version_id": "0003", "entries": 1,
         "indexes": [0]},
    ]
    first = (await client.get("/heal/versions", params={"limit": "1"})).json()
    assert first["truncated"] is True and [v["key"] for v in first["versions"]] == ["a"]
    mine = (await client.get("/heal/versions", params={"incarnation": "other"})).json()
    assert [v["key"] for v in mine["versions"]] == ["c"] and mine["truncated"] is False


async def test_heal_depth_by_incarnation(client: httpx.AsyncClient) -> None:
    await queue(client, heal_entry("a", "0001", 1), heal_entry("b", "0001", 2),
                heal_entry("c", "0001", 3, incarnation="other"))
    everything = (await client.get("/heal", params={"limit": "1"})).json()
    assert everything["depth"] == 3 and len(everything["entries"]) == 1
    ours = (await client.get("/heal", params={"incarnation": INC})).json()
    assert ours["depth"] == 2 and {e["key"] for e in ours["entries"]} == {"a", "b"}
    other = (await client.get("/heal", params={"incarnation": "other", "limit": "5"})).json()
    assert other["depth"] == 1 and other["entries"][0]["index"] == 3
    assert (await client.get("/heal", params={"incarnation": "none"})).json() == {
        "entries": [], "depth": 0}


async def test_metrics_need_no_token_but_status_does(data_dir: Path) -> None:
    async with running_app(data_dir) as (app, authorized):
        await queue(authorized, heal_entry("a", "0001", 1), heal_entry("b", "0001", 2))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://volume") as anonymous:
            assert (await anonymous.get("/status")).status_code == 401
            assert (await anonymous.get("/heal/versions")).status_code == 401
            r = await anonymous.get("/metrics")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(r.text)
               for s in family.samples}
    assert samples[("shardgate_heal_queue_depth", (("volume", "v1"),))] == 2
    assert samples[("shardgate_heal_queue_versions", (("volume", "v1"),))] == 2
    assert samples[("shardgate_disk_free_bytes", (("volume", "v1"),))] > 0
    # the request to /status above was refused before routing, and counted
    assert samples[("shardgate_requests_total",
                    (("operation", "unrouted"), ("status", "401")))] >= 1
    assert samples[("shardgate_requests_total",
                    (("operation", "POST /heal"), ("status", "200")))] >= 1


def test_route_operation_names_the_route_template_not_the_path() -> None:
    class FakeRoute:
        path = "/archives/{archive_id}"

    assert route_operation({"method": "GET", "route": FakeRoute()}) == \
        "GET /archives/{archive_id}"
    assert route_operation({"method": "GET"}) == "unrouted"
