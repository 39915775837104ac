"""PUT/DELETE /stage/{stage_id}: the first half of every write (docs/volume-api.md)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shardgate import faults
from shardgate.jsonio import JSONResponse
from volume_server.errors import ApiError
from volume_server.layout import check_stage_id
from volume_server.params import query_int
from volume_server.routes import store_of

MAX_STAGE_BYTES = 1 << 50


async def put_stage(request: Request) -> Response:
    stage_id = check_stage_id(request.path_params["stage_id"])
    expected = None
    if request.query_params.get("size"):
        expected = query_int(request, "size", 0, 0, MAX_STAGE_BYTES)
    inline = request.query_params.get("inline", "0")
    if inline not in ("0", "1"):
        raise ApiError(400, "inline must be 0 or 1")
    cache = request.query_params.get("cache", "1")
    if cache not in ("0", "1"):
        raise ApiError(400, "cache must be 0 or 1")
    while faults.held("stage.body"):  # the fault suite's stuck volume
        await asyncio.sleep(0.05)
    store = store_of(request)
    size = await store.stage(stage_id, request.stream(), expected, inline == "1",
                             around_cache=cache == "0")
    return JSONResponse({"stage_id": stage_id, "size": size, "clock": store.clock})


async def delete_stage(request: Request) -> Response:
    stage_id = check_stage_id(request.path_params["stage_id"])
    await store_of(request).discard_stage(stage_id)
    return Response(status_code=204)


routes = [
    Route("/stage/{stage_id}", put_stage, methods=["PUT"]),
    Route("/stage/{stage_id}", delete_stage, methods=["DELETE"]),
]
