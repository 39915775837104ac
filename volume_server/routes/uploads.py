"""Multipart uploads and their parts: /uploads/... and POST /parts/commit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from volume_server.errors import ApiError
from volume_server.layout import check_archive_id, check_stage_id
from volume_server.params import field, json_body, number, query_flag, query_text, text
from volume_server.routes import store_of

MAX_PART_NUMBER = 10_000


async def put_upload(request: Request) -> JSONResponse:
    upload_id = request.path_params["upload_id"]
    body = await json_body(request)
    if text(body, "upload_id", upload_id) != upload_id:
        raise ApiError(400, "body upload_id differs from the path")
    record = {
        "upload_id": upload_id,
        "incarnation": text(body, "incarnation"),
        "bucket": text(body, "bucket"),
        "key": text(body, "key"),
        "initiated": number(body, "initiated"),
        "owner": text(body, "owner", "", nonempty=False),
        "manifest": field(body, "manifest", dict, {}),
    }
    await store_of(request).put_upload(record)
    return JSONResponse({"stored": True})


async def get_upload(request: Request) -> JSONResponse:
    record = await store_of(request).get_upload(request.path_params["upload_id"])
    if record is None:
        raise ApiError(404, "no such upload")
    return JSONResponse(record)


async def list_parts(request: Request) -> JSONResponse:
    parts = await store_of(request).list_parts(request.path_params["upload_id"])
    return JSONResponse({"parts": parts})


async def delete_upload(request: Request) -> Response:
    keep = query_flag(request, "keep_archives", False)
    await store_of(request).delete_upload(request.path_params["upload_id"], keep)
    return Response(status_code=204)


async def list_uploads(request: Request) -> JSONResponse:
    uploads = await store_of(request).list_uploads(query_text(request, "incarnation"),
                                                   query_text(request, "prefix"))
    return JSONResponse({"uploads": uploads})


async def commit_part(request: Request) -> JSONResponse:
    body = await json_body(request)
    part_number = field(body, "part_number", int)
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise ApiError(400, f"part_number must be in [1, {MAX_PART_NUMBER}]")
    await store_of(request).commit_part(
        upload_id=text(body, "upload_id"),
        part_number=part_number,
        stage_id=check_stage_id(text(body, "stage_id")),
        archive_id=check_archive_id(text(body, "archive_id")),
        manifest=field(body, "manifest", dict, {}),
    )
    return JSONResponse({"committed": True})


routes = [
    Route("/uploads", list_uploads, methods=["GET"]),
    Route("/uploads/{upload_id}", put_upload, methods=["PUT"]),
    Route("/uploads/{upload_id}", get_upload, methods=["GET"]),
    Route("/uploads/{upload_id}", delete_upload, methods=["DELETE"]),
    Route("/uploads/{upload_id}/parts", list_parts, methods=["GET"]),
    Route("/parts/commit", commit_part, methods=["POST"]),
]
