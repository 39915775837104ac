"""Multipart uploads and their parts: /uploads/... and POST /parts/commit.

An upload ends by Complete or Abort, each claimed first (POST /uploads/{id}/claim) so that
only one of two racing gateways can act (volume_server/uploads.py).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shardgate.jsonio import JSONResponse
from volume_server import claims
from volume_server.errors import ApiError
from volume_server.layout import check_archive_id, check_stage_id
from volume_server.params import field, json_body, number, query_flag, query_text, text
from volume_server.routes import store_of
from volume_server.routes.objects import parse_commit
from volume_server.uploads import CLAIM_OPS

MAX_PART_NUMBER = 10_000
MAX_TOKEN = 96


def _token(value: str) -> str:
    if len(value) > MAX_TOKEN:
        raise ApiError(400, "token is too long")
    return value


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


async def abort_upload(request: Request) -> Response:
    if query_flag(request, "keep_archives", False):
        raise ApiError(400, "keep_archives=1 is gone: complete with POST "
                            "/uploads/{upload_id}/complete")
    token = query_text(request, "token") or None
    await store_of(request).abort_upload(request.path_params["upload_id"],
                                         None if token is None else _token(token))
    return Response(status_code=204)


async def claim_upload(request: Request) -> JSONResponse:
    body = await json_body(request)
    op = text(body, "op")
    if op not in CLAIM_OPS:
        raise ApiError(400, f"op must be one of {', '.join(CLAIM_OPS)}")
    await store_of(request).claim_upload(request.path_params["upload_id"],
                                         _token(text(body, "token")), op)
    return JSONResponse({"claimed": True})


async def release_claim(request: Request) -> Response:
    token = _token(query_text(request, "token", required=True))
    await store_of(request).release_claim(request.path_params["upload_id"], token)
    return Response(status_code=204)


async def complete_upload(request: Request) -> JSONResponse:
    body = await json_body(request)
    token = _token(text(body, "token"))
    commit, stage_id, _, _ = parse_commit(body)
    if stage_id is not None:
        raise ApiError(400, "a complete commits existing part archives, not a stage")
    store = store_of(request)
    try:
        missing = await store.complete_upload(request.path_params["upload_id"], token,
                                              commit)
    except claims.NewerVersion as exc:  # a conditional Complete's fence failed
        raise ApiError(409, str(exc)) from exc
    return JSONResponse({"committed": True, "missing": missing, "clock": store.clock})


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
    Route("/uploads/{upload_id}", abort_upload, methods=["DELETE"]),
    Route("/uploads/{upload_id}/parts", list_parts, methods=["GET"]),
    Route("/uploads/{upload_id}/claim", claim_upload, methods=["POST"]),
    Route("/uploads/{upload_id}/claim", release_claim, methods=["DELETE"]),
    Route("/uploads/{upload_id}/complete", complete_upload, methods=["POST"]),
    Route("/parts/commit", commit_part, methods=["POST"]),
]
