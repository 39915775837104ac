"""Bucket records and settings: PUT/GET /buckets/{name}, PUT /buckets/{name}/settings/{setting},
GET /buckets (each kept only if its stamp is newer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from shardgate.jsonio import JSONResponse
from volume_server import records
from volume_server.errors import ApiError
from volume_server.params import field, json_body, number, text
from volume_server.routes import store_of


async def put_bucket(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    body = await json_body(request)
    if text(body, "name", name) != name:
        raise ApiError(400, "body name differs from the path")
    record = {
        "name": name,
        "owner": text(body, "owner", "", nonempty=False),
        "incarnation": text(body, "incarnation"),
        "created": number(body, "created"),
        "deleted": field(body, "deleted", bool, False),
        "stamp": field(body, "stamp", int),
    }
    return JSONResponse({"stored": await store_of(request).put_bucket(record)})


async def get_bucket(request: Request) -> JSONResponse:
    record = await store_of(request).get_bucket(request.path_params["name"])
    if record is None:
        raise ApiError(404, "no such bucket record")
    return JSONResponse(record)


async def put_setting(request: Request) -> JSONResponse:
    """Body {"incarnation", "stamp", "value"}: one setting of one bucket incarnation."""
    body = await json_body(request)
    if "value" not in body:
        raise ApiError(400, "value: required")
    stored = await store_of(request).index.write(
        records.put_setting, request.path_params["name"], text(body, "incarnation"),
        request.path_params["setting"], field(body, "stamp", int), body["value"])
    return JSONResponse({"stored": stored})


async def list_buckets(request: Request) -> JSONResponse:
    return JSONResponse({"buckets": await store_of(request).list_buckets()})


routes = [
    Route("/buckets", list_buckets, methods=["GET"]),
    Route("/buckets/{name}", put_bucket, methods=["PUT"]),
    Route("/buckets/{name}", get_bucket, methods=["GET"]),
    Route("/buckets/{name}/settings/{setting}", put_setting, methods=["PUT"]),
]
