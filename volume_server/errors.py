"""JSON error answers (`{"error": ...}`) for everything the internal API can refuse."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shardgate.jsonio import JSONResponse
from volume_server.archives import BadRange, Unsatisfiable
from volume_server.index import IndexClosed
from volume_server.layout import BadName
from volume_server.staging import StageBusy, StageError, StageFull, StageMissing
from volume_server.uploads import UploadConflict, UploadMissing

log = logging.getLogger("shardgate.volume")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


_STATUS: dict[type[Exception], int] = {
    BadName: 400,
    StageError: 400,
    BadRange: 400,
    ClientDisconnect: 400,
    StageMissing: 404,
    UploadMissing: 404,
    StageBusy: 409,
    UploadConflict: 409,
    IndexClosed: 503,
    StageFull: 503,
}


def error_status(exc: Exception) -> tuple[int, str]:
    """The status and message an exception is answered with (500 if unforeseen)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code, str(exc)
    return 500, f"internal error: {type(exc).__name__}"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def _known_error(request: Request, exc: Exception) -> Response:
    return error_response(*error_status(exc))


async def _unsatisfiable(request: Request, exc: Exception) -> Response:
    size = exc.args[1] if len(exc.args) > 1 else "*"
    return error_response(416, "range not satisfiable", {"content-range": f"bytes */{size}"})


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")


def exception_handlers() -> dict[type[Exception] | int, object]:
    handlers: dict[type[Exception] | int, object] = {
        ApiError: _api_error,
        HTTPException: _http_error,
        Unsatisfiable: _unsatisfiable,
        Exception: _internal,
    }
    handlers.update({kind: _known_error for kind in _STATUS})
    return handlers
