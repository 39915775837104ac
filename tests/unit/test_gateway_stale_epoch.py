"""The gateway's volume client tells a stale ring epoch from a conflict: both are 409, but
a StaleEpoch refusal counts as a failed volume (and has the map re-read), never as "a
newer version is there" or "another op holds the claim"."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.objects.volume_client import VolumeClient
from gateway.objects.volume_errors import StaleEpoch, VolumeRejected
from shardgate.config import ClusterConfig, VolumeSpec

pytestmark = pytest.mark.anyio


async def answer_409(request: web.Request) -> web.Response:
    """A stand-in volume: the claim of u-stale meets a newer epoch, u-held another op."""
    seen = request.headers.get("x-shardgate-epoch")
    if request.match_info["upload_id"] == "u-stale":
        return web.json_response({"error": "StaleEpoch", "code": "StaleEpoch", "epoch": 9,
                                  "sent": seen}, status=409)
    return web.json_response({"error": "claimed by another op"}, status=409)


async def test_a_stale_epoch_is_not_a_conflict_and_asks_for_the_map() -> None:
    app = web.Application()
    app.router.add_post("/uploads/{upload_id}/claim", answer_409)
    async with TestServer(app, host="127.0.0.1") as server:
        config = ClusterConfig(volumes=(VolumeSpec(id="v1", url=str(server.make_url(""))),),
                               jwt_secret="x" * 32)
        client = VolumeClient(config)
        client.follow({"v1": str(server.make_url(""))}, epoch=4)
        asked: list[int] = []
        client.on_stale_epoch = lambda: asked.append(1)
        await client.start()
        try:
            with pytest.raises(StaleEpoch) as stale:
                await client.claim_upload("v1", "u-stale", "t", "complete")
            assert stale.value.status == 409 and not stale.value.conflict
            assert asked == [1]
            with pytest.raises(VolumeRejected) as held:
                await client.claim_upload("v1", "u-held", "t", "complete")
            assert not isinstance(held.value, StaleEpoch) and held.value.conflict
            assert asked == [1]
        finally:
            await client.close()
