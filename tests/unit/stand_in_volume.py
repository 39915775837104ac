"""A volume client talking to a stand-in volume (an aiohttp app on loopback), for unit
tests of the client's side of a route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.objects.volume_client import VolumeClient
from shardgate.config import ClusterConfig, VolumeSpec


@asynccontextmanager
async def client_of(app: web.Application, **options: float) -> AsyncIterator[VolumeClient]:
    """A started VolumeClient whose volume "v1" is `app` (`options` are its timeouts);
    closed afterwards."""
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url(""))
        client = VolumeClient(ClusterConfig(volumes=(VolumeSpec(id="v1", url=url),),
                                            jwt_secret="x" * 32),
                              **options)
        client.follow({"v1": url}, epoch=1)
        await client.start()
        try:
            yield client
        finally:
            await client.close()
