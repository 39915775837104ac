"""The volume server as a pure ASGI app, so the serving layer (Hypercorn today) can change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware

from shardgate.collector import settle_after_startup
from shardgate.config import ClusterConfig
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import MapView, update_map, with_url
from shardgate.memory import keep_returning_free_memory
from volume_server import scrub
from volume_server.auth import TokenAuth
from volume_server.errors import exception_handlers
from volume_server.fence import EpochFence, EpochsSeen
from volume_server.heal_leases import LeaseTable
from volume_server.janitor import run_forever
from volume_server.layout import Layout
from volume_server.metrics import VolumeMetrics
from volume_server.routes import all_routes
from volume_server.store import Store

log = logging.getLogger("shardgate.volume")


def create_app(config: ClusterConfig, volume_id: str, data_dir: str | Path,
               layout: Layout | None = None, url: str = "",
               follow_map: bool = False, settle_collector: bool = False) -> Starlette:
    """The app for one volume; its lifespan opens the store and closes it on shutdown.

    `layout` may already hold the data directory's lock (taken before serving starts).
    With `follow_map`, the volume follows the cluster map (its persisted copy in the data
    directory) and records its `url` there when the map has another. With
    `settle_collector`, a started volume freezes its objects and tunes its garbage
    collector (shardgate/collector.py): for a server process, not for a test's interpreter.
    """
    store = Store(data_dir, volume_id, layout)
    scrubber = scrub.Scrubber(store, config.durability.scrub_bytes_per_second)
    view = MapView(config, "volume", volume_id, cache_dir=data_dir, url=url) \
        if follow_map else None
    epochs = EpochsSeen()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        if view is not None:
            fence = app.state.fence
            view.listeners.append(lambda new: fence.learn(new.epoch))
            await view.start()
            fence.learn(view.current.epoch)
            await _record_url(view, volume_id, url)
        janitor = asyncio.create_task(run_forever(store, config.durability))
        scrubbing = asyncio.create_task(scrub.run_forever(
            scrubber, config.durability.scrub_interval_seconds))
        returning = asyncio.create_task(keep_returning_free_memory())
        if settle_collector:
            settle_after_startup()
        try:
            yield
        finally:
            for task in (janitor, scrubbing, returning):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if view is not None:
                await view.stop()
            await store.close()

    app = Starlette(
        routes=all_routes(),
        # /metrics is answered ahead of the token check (volume_server/metrics.py).
        middleware=[Middleware(VolumeMetrics, store=store, volume_id=volume_id),
                    Middleware(TokenAuth, secret=config.jwt_secret, volume_id=volume_id),
                    Middleware(EpochFence, epochs=epochs)],
        exception_handlers=exception_handlers(),  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.scrubber = scrubber
    app.state.durability = config.durability
    app.state.map_view = view
    app.state.fence = epochs
    app.state.heal_leases = LeaseTable()
    return app


async def _record_url(view: MapView, volume_id: str, url: str) -> None:
    """Put this volume's address in the map if the map has another (a restart on a new
    port); the store being down only delays it to the next start."""
    mapped = view.current.volume(volume_id)
    if mapped is None or mapped.url == url or not url:
        return
    try:
        await update_map(view.store, view.config, with_url(volume_id, url))
        await view.refresh()
    except MapUnavailable as exc:
        log.warning("could not record url %s in the cluster map: %s", url, exc)
