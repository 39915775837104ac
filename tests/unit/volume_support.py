"""One volume-server app in-process behind an httpx client, shared by the volume tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette

from shardgate.config import ClusterConfig, DurabilitySpec, VolumeSpec
from shardgate.tokens import mint_token
from volume_server.app import create_app

SECRET = "volume-test-secret-0123456789abcdef"
VOLUME = "v1"
INC = "inc1"


def config(volume_id: str = VOLUME, grace: float = 0.0) -> ClusterConfig:
    """No grace by default: a superseded archive is freed at once, as the tests expect."""
    return ClusterConfig(volumes=(VolumeSpec(id=volume_id, url="http://127.0.0.1:1"),),
                         jwt_secret=SECRET, durability=DurabilitySpec(grace_seconds=grace))


def auth(volume_id: str = VOLUME) -> dict[str, str]:
    return {"authorization": f"Bearer {mint_token(SECRET, volume_id, 'write')}"}


@contextlib.asynccontextmanager
async def running_app(data_dir: Path, volume_id: str = VOLUME, authorize: bool = True,
                      grace: float = 0.0
                      ) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its lifespan entered, and a client (with a write token unless
    `authorize` is False) talking to it through ASGI."""
    app = create_app(config(volume_id, grace), volume_id, data_dir)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://volume",
            headers=auth(volume_id) if authorize else None) as client:
        yield app, client


@contextlib.asynccontextmanager
async def running(data_dir: Path, volume_id: str = VOLUME, authorize: bool = True
                  ) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(data_dir, volume_id, authorize) as (_, client):
        yield client
