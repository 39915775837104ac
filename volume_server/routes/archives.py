"""GET/HEAD/DELETE /archives/{archive_id}: ranged reads of fragment archives; GET
/archives: the ids of the archives this volume's rows own (what an operator or a test
diffs to see which fragments a rebalance moved)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erasure import SliceSpec
from shardgate.jsonio import JSONResponse
from volume_server import row_reads
from volume_server.archives import bytes_response, file_response, sliced_response
from volume_server.errors import ApiError
from volume_server.layout import check_archive_id
from volume_server.params import query_int
from volume_server.routes import store_of


def slice_spec(request: Request) -> SliceSpec | None:
    """The `slices` query parameter (erasure/slices.py), if any."""
    raw = request.query_params.get("slices")
    if raw is None:
        return None
    try:
        return SliceSpec.parse(raw)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc


async def get_archive(request: Request) -> Response:
    """Bytes of one Range of an archive; with `slices`, the checked slices of the
    fragments that range holds (erasure/slices.py)."""
    archive_id = check_archive_id(request.path_params["archive_id"])
    head = request.method == "HEAD"
    slices = slice_spec(request)
    if slices is not None and head:
        raise ApiError(400, "slices are for GET")
    found = await store_of(request).open_archive(archive_id)
    if found is None:
        raise ApiError(404, f"no archive {archive_id}")
    range_header = request.headers.get("range")
    if slices is not None:
        return sliced_response(found, range_header, slices)
    if isinstance(found, bytes):
        return bytes_response(found, range_header, head)
    try:
        size = found.size()
    except BaseException:
        found.close()
        raise
    return file_response(found, size, range_header, head)


async def delete_archive(request: Request) -> Response:
    archive_id = check_archive_id(request.path_params["archive_id"])
    await store_of(request).delete_archive(archive_id)
    return Response(status_code=204)


async def owned_archives(request: Request) -> Response:
    """A page of owned archive ids in id order after `after`; `next` for the next page."""
    after = request.query_params.get("after", "")
    limit = query_int(request, "limit", 1000, 1, 10_000)
    ids = await store_of(request).index.read(row_reads.owned_archives, after, limit)
    return JSONResponse({"archives": ids, "next": ids[-1] if len(ids) == limit else None})


routes = [
    Route("/archives", owned_archives, methods=["GET"]),
    Route("/archives/{archive_id}", get_archive, methods=["GET", "HEAD"]),
    Route("/archives/{archive_id}", delete_archive, methods=["DELETE"]),
]
