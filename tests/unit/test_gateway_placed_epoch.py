"""The ring epoch a write carries (Cluster.placing): its placement's, or a newer ring's
that places the key on the same volumes; never a newer one that moved the key. Commits
of two epochs queued for one volume go in two requests, each with its own epoch. A tag
change and a version delete carry their placement's epoch the same way."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.objects import attributes, versions
from gateway.objects.cluster import Cluster
from gateway.objects.volume_transport import PLACED_EPOCH
from shardgate.clustermap import add_volume
from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.manifest import ObjectManifest
from tests.unit.stand_in_volume import client_of
from tests.unit.test_gateway_volume_batches import one_then_queued

pytestmark = pytest.mark.anyio


def six_volumes(url: str | None = None) -> Cluster:
    """A cluster of six volumes (all served by `url`, if given)."""
    return Cluster.build(ClusterConfig(
        volumes=tuple(VolumeSpec(id=f"v{i}", url=url or f"http://127.0.0.1:{9100 + i}")
                      for i in range(1, 7)), jwt_secret="x" * 32))


def keys_that(cluster: Cluster, grown: Cluster, moved: bool) -> list[str]:
    def moves(key: str) -> bool:
        return set(cluster.placement("inc", key)) != set(grown.placement("inc", key))
    return [k for k in (f"k{i}" for i in range(100)) if moves(k) == moved]


def test_a_write_keeps_its_placements_epoch_unless_a_newer_ring_agrees() -> None:
    cluster = six_volumes()
    grown_map = add_volume(cluster.map, "v7", "http://127.0.0.1:9107")
    grown = six_volumes()
    grown.adopt(grown_map)
    moved, kept = keys_that(cluster, grown, True)[0], keys_that(cluster, grown, False)[0]
    assert cluster.volumes.write_epoch() == 1  # outside a write: the newest known
    with cluster.placing("inc", moved):
        assert cluster.volumes.write_epoch() == 1
        with cluster.placing("inc", kept):
            cluster.adopt(grown_map)  # the map changes while both writes are in flight
            assert cluster.volumes.write_epoch() == 2  # the same volumes under epoch 2
        assert cluster.volumes.write_epoch() == 1  # its key moved: still epoch 1
        # Placed earlier (an upload's parts): the epoch given, the same rule.
        with cluster.placing("inc", moved, (grown.placement("inc", moved), 2)):
            assert cluster.volumes.write_epoch() == 2
    assert PLACED_EPOCH.get() is None
    assert cluster.volumes.write_epoch() == 2


async def test_commits_of_two_epochs_go_in_two_requests() -> None:
    seen: list[tuple[str, list[str]]] = []
    gate = asyncio.Event()

    async def single(request: web.Request) -> web.Response:
        seen.append((request.headers["x-shardgate-epoch"], [(await request.json())["key"]]))
        await gate.wait()
        return web.json_response({"committed": True})

    async def many(request: web.Request) -> web.Response:
        commits = (await request.json())["commits"]
        seen.append((request.headers["x-shardgate-epoch"], [c["key"] for c in commits]))
        return web.json_response({"results": [{"committed": True} for _ in commits]})

    def at(epoch: int, key: str):  # noqa: ANN202 - a commit sent from a write of `epoch`
        async def commit() -> dict:
            token = PLACED_EPOCH.set(lambda: epoch)
            try:
                return await client.commit_object("v1", {"key": key})
            finally:
                PLACED_EPOCH.reset(token)
        return commit()

    app = web.Application()
    app.router.add_post("/objects/commit", single)
    app.router.add_post("/objects/commits", many)
    async with client_of(app) as client:
        first, queued = await one_then_queued(
            at(1, "first"), [at(2, "a"), at(1, "b"), at(2, "c"), at(1, "d")], gate)
        for future in (first, *queued):
            assert (await future)["committed"] is True
    assert seen[0] == ("1", ["first"])
    assert sorted(seen[1:]) == [("1", ["b", "d"]), ("2", ["a", "c"])]


async def test_a_tag_change_and_a_version_delete_keep_their_placements_epoch() -> None:
    """The map changes after each has chosen its placement and before its requests go:
    where its key moved they still say epoch 1 (every volume that knows epoch 2 refuses
    them), where the key kept its volumes epoch 2."""
    seen: dict[str, set[str]] = {}

    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        seen.setdefault(body["key"], set()).add(request.headers["x-shardgate-epoch"])
        return web.json_response({"found": True})

    app = web.Application()
    app.router.add_post("/objects/attribute", answer)
    app.router.add_post("/objects/forget", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url(""))
        cluster = six_volumes(url)
        grown_map = add_volume(cluster.map, "v7", url)
        grown = six_volumes(url)
        grown.adopt(grown_map)
        moved, kept = keys_that(cluster, grown, True)[0], keys_that(cluster, grown, False)[0]
        volumes = cluster.volumes
        await volumes.start()
        try:
            for send in ("set_attribute", "forget"):
                original = getattr(volumes, send)

                async def late(vid: str, payload: dict, original=original) -> bool:  # noqa: ANN001
                    cluster.adopt(grown_map)  # the move begins while the change is sent
                    return await original(vid, payload)
                setattr(volumes, send, late)
            for key in (moved, kept):
                cluster.adopt(six_volumes(url).map)
                manifest = ObjectManifest(bucket="b", incarnation="inc", key=key,
                                          version_id="v-1", last_modified=0.0, owner="o")
                await attributes.write(cluster, manifest, attributes.TAGS, {"a": "1"})
                cluster.adopt(six_volumes(url).map)
                await versions.forget(cluster, manifest)
        finally:
            await volumes.close()
    assert seen == {moved: {"1"}, kept: {"2"}}
