"""The volume server as a pure ASGI app, so the serving layer (Hypercorn today) can change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware

from shardgate.config import ClusterConfig
from volume_server import scrub
from volume_server.auth import TokenAuth
from volume_server.errors import exception_handlers
from volume_server.janitor import run_forever
from volume_server.layout import Layout
from volume_server.metrics import VolumeMetrics
from volume_server.routes import all_routes
from volume_server.store import Store


def create_app(config: ClusterConfig, volume_id: str, data_dir: str | Path,
               layout: Layout | None = None) -> Starlette:
    """The app for one volume; its lifespan opens the store and closes it on shutdown.

    `layout` may already hold the data directory's lock (taken before serving starts).
    """
    store = Store(data_dir, volume_id, layout)
    scrubber = scrub.Scrubber(store, config.durability.scrub_bytes_per_second)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        janitor = asyncio.create_task(run_forever(store, config.durability))
        scrubbing = asyncio.create_task(scrub.run_forever(
            scrubber, config.durability.scrub_interval_seconds))
        try:
            yield
        finally:
            for task in (janitor, scrubbing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await store.close()

    app = Starlette(
        routes=all_routes(),
        # /metrics is answered ahead of the token check (volume_server/metrics.py).
        middleware=[Middleware(VolumeMetrics, store=store, volume_id=volume_id),
                    Middleware(TokenAuth, secret=config.jwt_secret, volume_id=volume_id)],
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.scrubber = scrubber
    app.state.durability = config.durability
    return app
