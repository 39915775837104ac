"""Reading and checking request input: JSON bodies, typed fields, query parameters.

Everything a client sends is checked here before it reaches the store, so a bad field
is a 400 with a message naming it, never a 500 from deep inside SQLite.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from shardgate import jsonio
from volume_server.errors import ApiError

MAX_JSON_BYTES = 16 << 20
_MISSING = object()


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, refused past MAX_JSON_BYTES."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise ApiError(413, "JSON body too large")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_JSON_BYTES:
            raise ApiError(413, "JSON body too large")
    try:
        body = jsonio.loads(chunks)
    except ValueError as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...],
          default: Any = _MISSING, *, nullable: bool = False) -> Any:
    """body[name], checked against `kind` (bool is never accepted as a number)."""
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise ApiError(400, f"missing field {name!r}")
        return default
    if value is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ApiError(400, f"field {name!r} has the wrong type")
    if not isinstance(value, kinds):
        raise ApiError(400, f"field {name!r} has the wrong type")
    return value


def text(body: dict[str, Any], name: str, default: Any = _MISSING, *,
         nullable: bool = False, nonempty: bool = True) -> Any:
    value = field(body, name, str, default, nullable=nullable)
    if nonempty and value == "":
        raise ApiError(400, f"field {name!r} must not be empty")
    return value


def number(body: dict[str, Any], name: str, default: Any = _MISSING) -> float:
    return float(field(body, name, (int, float), default))


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"query parameter {name!r} must be an integer") from exc
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be in [{low}, {high}]")
    return value


def query_flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be 0 or 1")


def query_text(request: Request, name: str, *, required: bool = False) -> str:
    value = request.query_params.get(name, "")
    if required and not value:
        raise ApiError(400, f"missing query parameter {name!r}")
    return value
