"""Liveness and the heal queue: what an operator or a healer asks a volume about itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from volume_server.routes import store_of


async def health(request: Request) -> JSONResponse:
    store = store_of(request)
    return JSONResponse({"id": store.volume_id, "format": store.format, "status": "ok",
                         "clock": store.clock})


async def heal(request: Request) -> JSONResponse:
    return JSONResponse({"entries": await store_of(request).list_heal()})


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/heal", heal, methods=["GET"]),
]
