"""gateway/objects/volume_batches.py and the volume client's batched `latest` and commits:
items queued behind a request go in the next one, each answer to its own caller, a failed item
fails alone, a failed request fails its batch, a caller that gave up is not asked for,
and a volume that predates batches is asked one item at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import pytest
from aiohttp import web

from gateway.objects.volume_batches import VolumeBatches
from gateway.objects.volume_client import SHARED_COMMIT_BYTES
from gateway.objects.volume_errors import VolumeRebuilding, VolumeRejected, VolumeUnavailable
from tests.unit.stand_in_volume import client_of

pytestmark = pytest.mark.anyio


class Volume:
    """Answers each item with its square (an item of -1 fails alone) when released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.answers_short = False

    async def send(self, volume_id: str, items: list[int]) -> list[int | BaseException]:
        self.batches.append(items)
        await self.release.wait()
        if self.answers_short:
            return [1]
        return [VolumeUnavailable(volume_id, "bad item") if i < 0 else i * i for i in items]


async def test_per_item_answers_and_failures_and_given_up_callers() -> None:
    volume = Volume()
    batches: VolumeBatches[int, int] = VolumeBatches(volume.send, max_batch=3)
    first = batches.send("v1", 2)
    await asyncio.sleep(0)
    queued = [batches.send("v1", i) for i in (3, -1, 4, 5)]
    queued[2].cancel()  # its caller gave up before the batch went
    volume.release.set()
    assert await first == 4
    assert await queued[0] == 9
    with pytest.raises(VolumeUnavailable):
        await queued[1]
    assert await queued[3] == 25
    assert volume.batches == [[2], [3, -1], [5]]


async def test_a_miscounted_answer_fails_the_batch() -> None:
    volume = Volume()
    volume.answers_short = True
    volume.release.set()
    batches: VolumeBatches[int, int] = VolumeBatches(volume.send, max_batch=8)
    futures = [batches.send("v1", i) for i in (1, 2)]
    with pytest.raises(RuntimeError):
        await futures[0]
    with pytest.raises(RuntimeError):
        await futures[1]


async def one_then_queued(first: Awaitable, rest: list[Awaitable],
                          gate: asyncio.Event) -> tuple[asyncio.Future, list[asyncio.Future]]:
    """Start `first` (its request to the stand-in waits on `gate`), queue `rest` behind
    it, then open the gate: `rest` goes as the next request."""
    head = asyncio.ensure_future(first)
    await asyncio.sleep(0.05)  # its request is on the way
    queued = [asyncio.ensure_future(call) for call in rest]
    await asyncio.sleep(0)
    gate.set()
    return head, queued


ROWS_JSON = json.dumps([{"version_id": "v2", "deleted": False, "durable": True,
                         "manifest": {}, "inline": {"a": "aGVsbG8="}}])


async def test_the_client_asks_latest_of_queued_keys_in_one_request() -> None:
    seen: list[tuple[str, object]] = []
    gate = asyncio.Event()

    async def single(request: web.Request) -> web.Response:
        seen.append(("GET", request.query["key"]))
        await gate.wait()
        rows = json.loads(ROWS_JSON) if request.query["key"] != "none" else []
        return web.json_response({"versions": rows, "clock": "", "rebuilding": False})

    async def many(request: web.Request) -> web.Response:
        keys = (await request.json())["keys"]
        seen.append(("POST", keys))
        answers = [json.loads(ROWS_JSON) if k[1] == "k" else "junk" if k[1] == "junk"
                   else [] for k in keys]
        return web.Response(body=json.dumps({"answers": answers, "clock": "",
                                             "rebuilding": keys[0][1] == "rebuild"}),
                            content_type="application/json")

    app = web.Application()
    app.router.add_get("/objects/latest", single)
    app.router.add_post("/objects/latest", many)
    async with client_of(app) as client:
        alone, rest = await one_then_queued(
            client.latest("v1", "i", "k", with_inline=True),
            [client.latest("v1", "i", key, with_inline=True) for key in ("k", "none", "junk")],
            gate)
        assert (await alone)[0]["inline"] == {"a": b"hello"}
        assert (await rest[0])[0]["inline"] == {"a": b"hello"}
        assert await rest[1] == []
        with pytest.raises(VolumeUnavailable):
            await rest[2]
        assert seen == [("GET", "k"), ("POST", [["i", "k", True], ["i", "none", True],
                                                ["i", "junk", True]])]
        gate.clear()
        blocker, rebuilding = await one_then_queued(
            client.latest("v1", "i", "k"),
            [client.latest("v1", "i", key) for key in ("rebuild", "k")], gate)
        await blocker
        for future in rebuilding:
            with pytest.raises(VolumeRebuilding):
                await future


async def test_the_client_sends_queued_commits_in_one_request() -> None:
    seen: list[tuple[str, list[str]]] = []
    gate = asyncio.Event()
    batches_known = True

    async def single(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(("one", [body["key"]]))
        await gate.wait()
        return web.json_response({"committed": True, "clock": "c1", "rebuilding": False})

    async def many(request: web.Request) -> web.Response:
        if not batches_known:
            return web.json_response({"error": "no such route"}, status=404)
        commits = (await request.json())["commits"]
        seen.append(("many", [c["key"] for c in commits]))
        results = {"ok": {"committed": True}, "newer": {"status": 409, "error": "newer"},
                   "broken": {"status": 500, "error": "disk"}, "junk": "?"}
        return web.json_response({"results": [results[c["key"]] for c in commits],
                                  "clock": "c2", "rebuilding": False})

    app = web.Application()
    app.router.add_post("/objects/commit", single)
    app.router.add_post("/objects/commits", many)
    async with client_of(app) as client:
        first, queued = await one_then_queued(
            client.commit_object("v1", {"key": "first"}),
            [client.commit_object("v1", {"key": key})
             for key in ("ok", "newer", "broken", "junk")], gate)
        assert (await first)["committed"] is True
        assert await queued[0] == {"committed": True, "clock": "c2", "rebuilding": False}
        with pytest.raises(VolumeRejected) as refused:
            await queued[1]
        assert refused.value.conflict
        for future in queued[2:]:
            with pytest.raises(VolumeUnavailable):
                await future
        assert seen == [("one", ["first"]), ("many", ["ok", "newer", "broken", "junk"])]
        # A volume that predates batches: each commit is sent alone.
        batches_known = False
        seen.clear()
        gate.clear()
        blocker, rest = await one_then_queued(
            client.commit_object("v1", {"key": "a"}),
            [client.commit_object("v1", {"key": k}) for k in ("b", "c")], gate)
        for future in (blocker, *rest):
            assert (await future)["committed"] is True
        assert sorted(seen) == [("one", ["a"]), ("one", ["b"]), ("one", ["c"])]


async def test_a_cancelled_drain_tells_its_callers() -> None:
    volume = Volume()  # never released: the request hangs
    batches: VolumeBatches[int, int] = VolumeBatches(volume.send, max_batch=8)
    sent = batches.send("v1", 1)
    await asyncio.sleep(0)
    queued = batches.send("v1", 2)
    next(iter(batches._draining.values())).cancel()
    for future in (sent, queued):
        with pytest.raises(VolumeUnavailable):
            await asyncio.wait_for(future, 5)  # not left hanging
    volume.release.set()
    assert await batches.send("v1", 3) == 9  # a new drain starts


async def test_latest_from_a_volume_that_predates_batches() -> None:
    asked: list[str] = []
    gate = asyncio.Event()

    async def single(request: web.Request) -> web.Response:
        asked.append(request.query["key"])
        await gate.wait()
        return web.json_response({"versions": [], "clock": "", "rebuilding": False})

    app = web.Application()
    app.router.add_get("/objects/latest", single)  # a POST is answered 405
    async with client_of(app) as client:
        first, rest = await one_then_queued(
            client.latest("v1", "i", "a"), [client.latest("v1", "i", k) for k in ("b", "c")],
            gate)
        for future in (first, *rest):
            assert await future == []
        assert sorted(asked) == ["a", "b", "c"]


async def test_a_big_commit_goes_alone() -> None:
    seen: list[str] = []

    async def single(request: web.Request) -> web.Response:
        seen.append("one")
        await asyncio.sleep(0.05)
        return web.json_response({"committed": True, "clock": "", "rebuilding": False})

    async def many(request: web.Request) -> web.Response:
        commits = (await request.json())["commits"]
        seen.append(f"{len(commits)} together")
        return web.json_response({"results": [{"committed": True}] * len(commits),
                                  "clock": "", "rebuilding": False})

    app = web.Application()
    app.router.add_post("/objects/commit", single)
    app.router.add_post("/objects/commits", many)
    async with client_of(app) as client:
        first = asyncio.ensure_future(client.commit_object("v1", {"key": "a"}))
        await asyncio.sleep(0.01)
        big = {"key": "big", "data": "x" * (SHARED_COMMIT_BYTES + 1)}
        rest = [asyncio.ensure_future(client.commit_object("v1", p))
                for p in ({"key": "b"}, big, {"key": "c"})]
        for future in (first, *rest):
            assert (await future)["committed"] is True
        assert sorted(seen) == ["2 together", "one", "one"]
