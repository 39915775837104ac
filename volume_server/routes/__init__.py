"""HTTP routes of the internal volume API (docs/volume-api.md), one module per concern."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from shardgate.fault_routes import fault_routes
from volume_server.store import Store


def store_of(request: Request) -> Store:
    return request.app.state.store


def all_routes() -> list[Route]:
    from volume_server.routes import archives, buckets, objects, stage, status, uploads

    return [*status.routes, *stage.routes, *objects.routes, *archives.routes,
            *buckets.routes, *uploads.routes, *fault_routes("/faults")]
