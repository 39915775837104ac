"""JSON of the internal API (gateway <-> volumes), encoded and decoded with orjson.

Listing pages and `latest` answers are the largest JSON the cluster moves; the stdlib
codec was most of a listing's CPU on both ends. orjson differs from it in two ways that
matter here, both kept as the stdlib has them: dict keys that are not strings are
written as strings, and an integer too large for 64 bits (none is sent today) goes
through the stdlib instead of raising.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSON

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # an int beyond 64 bits, or a type orjson leaves to the caller
        return json.dumps(value, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


class JSONResponse(_StarletteJSON):
    """Starlette's JSONResponse, rendered by `dumps`."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
