"""GET /objects/list: each key's rows down to the newest durable one, prefix/start_after/
delimiter/limit, live rollups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.volume_support import INC, running
from volume_server.listing import successor

pytestmark = pytest.mark.anyio

@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


async def commit(client: httpx.AsyncClient, key: str, n: int, deleted: bool = False,
                 incarnation: str = INC, versioned: bool = False,
                 durable: bool = True) -> None:
    body = {"incarnation": incarnation, "key": key, "version_id": f"{n:032x}",
            "deleted": deleted, "manifest": {}, "versioned": versioned, "durable": durable,
            "summary": {"size": n, "etag": f"etag{n}", "last_modified": float(n),
                        "owner": "alice"}}
    r = await client.post("/objects/commit", json=body)
    assert r.status_code == 200, r.text


async def page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get("/objects/list", params={"incarnation": INC, **params})
    assert r.status_code == 200, r.text
    return r.json()


def names(result: dict[str, Any]) -> list[str]:
    return [e.get("key", e.get("prefix")) for e in result["entries"]]


async def test_plain_listing_is_newest_row_per_key(client: httpx.AsyncClient) -> None:
    await commit(client, "b", 1, versioned=True)
    await commit(client, "b", 3, versioned=True)
    await commit(client, "a", 2)
    await commit(client, "c", 4, deleted=True)
    await commit(client, "x", 5, incarnation="other")
    result = await page(client)
    assert names(result) == ["a", "b", "c"]
    assert result["truncated"] is False and result["next"] == "c"
    b = result["entries"][1]
    assert b == {"key": "b", "versions": [
        {"version_id": f"{3:032x}", "deleted": False, "durable": True, "size": 3,
         "etag": "etag3", "last_modified": 3.0, "owner": "alice"}]}
    assert result["entries"][2]["versions"][0]["deleted"] is True


async def test_pending_rows_are_listed_down_to_the_newest_durable(
        client: httpx.AsyncClient) -> None:
    await commit(client, "k", 1)
    await commit(client, "k", 2, durable=False)
    await commit(client, "k", 3, deleted=True, durable=False)
    result = await page(client)
    versions = result["entries"][0]["versions"]
    assert [(v["version_id"], v["durable"]) for v in versions] == [
        (f"{3:032x}", False), (f"{2:032x}", False), (f"{1:032x}", True)]
    # a pending tombstone does not make a prefix look empty
    await commit(client, "p/x", 4)
    await commit(client, "p/x", 5, deleted=True, durable=False)
    assert names(await page(client, delimiter="/")) == ["k", "p/"]
    # a prefix backed only by pending rows says so (the gateway checks it)
    await commit(client, "q/y", 6, durable=False)
    listed = (await page(client, delimiter="/"))["entries"]
    assert listed[1:] == [{"prefix": "p/", "settled": False},
                          {"prefix": "q/", "settled": False}]


async def test_prefix_start_after_and_limit(client: httpx.AsyncClient) -> None:
    for n, key in enumerate(["a1", "a2", "a3", "a4", "b1", "ab"], start=1):
        await commit(client, key, n)
    assert names(await page(client, prefix="a")) == ["a1", "a2", "a3", "a4", "ab"]
    first = await page(client, prefix="a", limit=2)
    assert names(first) == ["a1", "a2"] and first["truncated"] and first["next"] == "a2"
    second = await page(client, prefix="a", limit=2, start_after=first["next"])
    assert names(second) == ["a3", "a4"] and second["truncated"]
    third = await page(client, prefix="a", limit=2, start_after=second["next"])
    assert names(third) == ["ab"] and third["truncated"] is False
    assert names(await page(client, start_after="a4")) == ["ab", "b1"]
    assert names(await page(client, prefix="b", start_after="a")) == ["b1"]
    assert names(await page(client, prefix="a", start_after="zzz")) == []
    exact = await page(client, limit=6)
    assert len(exact["entries"]) == 6 and exact["truncated"] is False
    empty = await page(client, limit=0)
    assert empty == {"entries": [], "truncated": False, "next": "", "rebuilding": True}
    r = await client.get("/objects/list", params={"incarnation": INC, "limit": "x"})
    assert r.status_code == 400
    r = await client.get("/objects/list")
    assert r.status_code == 400


async def test_delimiter_rolls_up_and_skips(client: httpx.AsyncClient) -> None:
    keys = ["photos/2024/a.jpg", "photos/2024/b.jpg", "photos/2025/c.jpg", "photos/top.jpg",
            "readme", "videos/x.mp4"]
    for n, key in enumerate(keys, start=1):
        await commit(client, key, n)
    assert names(await page(client, delimiter="/")) == ["photos/", "readme", "videos/"]
    nested = await page(client, prefix="photos/", delimiter="/")
    assert names(nested) == ["photos/2024/", "photos/2025/", "photos/top.jpg"]
    assert nested["entries"][0] == {"prefix": "photos/2024/", "settled": True}

    first = await page(client, prefix="photos/", delimiter="/", limit=1)
    assert names(first) == ["photos/2024/"] and first["truncated"]
    assert first["next"] == "photos/2024/"
    rest = await page(client, prefix="photos/", delimiter="/", start_after=first["next"])
    assert names(rest) == ["photos/2025/", "photos/top.jpg"]
    # resuming from a key inside a rolled-up prefix skips the rest of that prefix
    inside = await page(client, prefix="photos/", delimiter="/",
                        start_after="photos/2024/a.jpg")
    assert names(inside) == ["photos/2025/", "photos/top.jpg"]
    assert names(await page(client, delimiter="2")) == ["photos/2", "photos/top.jpg",
                                                        "readme", "videos/x.mp4"]


async def test_rollups_only_for_live_keys(client: httpx.AsyncClient) -> None:
    await commit(client, "dead/a", 1)
    await commit(client, "dead/a", 2, deleted=True)
    await commit(client, "dead/b", 3, deleted=True)
    await commit(client, "mixed/a", 4, deleted=True)
    await commit(client, "mixed/b", 5)
    await commit(client, "old/a", 6, deleted=True, versioned=True)
    await commit(client, "old/a", 7, versioned=True)
    result = await page(client, delimiter="/")
    assert names(result) == ["mixed/", "old/"]
    # tombstones still appear as keys when nothing rolls them up
    assert names(await page(client, prefix="dead/")) == ["dead/a", "dead/b"]


async def test_limit_counts_prefixes(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await commit(client, f"d{n}/k", n + 1)
    result = await page(client, delimiter="/", limit=3)
    assert names(result) == ["d0/", "d1/", "d2/"] and result["truncated"]
    rest = await page(client, delimiter="/", limit=3, start_after=result["next"])
    assert names(rest) == ["d3/", "d4/"] and rest["truncated"] is False


async def test_unicode_keys_sort_like_code_points(client: httpx.AsyncClient) -> None:
    keys = ["a", "b", "é", "\u4e2d", "\U0001f600", "z"]
    for n, key in enumerate(keys, start=1):
        await commit(client, key, n)
    assert names(await page(client)) == sorted(keys)
    assert names(await page(client, start_after="é")) == ["\u4e2d", "\U0001f600"]


def test_successor() -> None:
    assert successor("photos/") == "photos0"
    assert successor("a\U0010ffff") == "b"
    assert successor("\U0010ffff") is None
    assert successor("") is None
    assert successor("\ud7ff") == "\ue000"
