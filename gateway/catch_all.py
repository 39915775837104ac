"""A Starlette route that takes every request, so any key and method reaches the S3 handler.

`Route("/{path:path}")` matches with `.*`, which stops at a newline: a key such as "a\\nb"
got Starlette's plain-text 404 instead of S3. Methods S3 does not have (PATCH, OPTIONS)
also belong to the handler, which answers them with an XML MethodNotAllowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope


class EveryRequest(Route):
    """Matches every HTTP request; put it after the routes that should win over it."""

    def __init__(self, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        super().__init__("/{path:path}", endpoint)
        self.methods = None  # Route.handle would answer other methods with a plain-text 405

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        if scope["type"] != "http":
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}
