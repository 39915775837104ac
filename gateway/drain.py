"""ASGI middleware: never leave a request body unread behind an early answer.

When a handler answers before reading the body (a 503 before the upload started, an
AccessDenied), Hypercorn keeps queueing body chunks for an app that has finished, stops
reading the socket, and the client, still sending, never reads our answer. So before an
answer starts, the rest of the body is read and dropped, up to a limit; past the limit
the answer carries `Connection: close` instead.
"""

from __future__ import annotations

from typing import Any

DRAIN_LIMIT = 64 * 1024 * 1024


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: dict[str, Any]) -> bool:
    length = _declared_length(scope)
    if length is not None:
        return length > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", []))


class DrainUnreadBody:
    def __init__(self, app: Any, limit: int = DRAIN_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        done = not _has_body(scope)

        async def tracked_receive() -> dict[str, Any]:
            nonlocal done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not done:
                drained = 0
                while not done and drained <= self.limit:
                    drained += len((await tracked_receive()).get("body", b""))
                if not done and scope.get("http_version", "1.1").startswith("1"):
                    # HTTP/2 has no Connection header (h2 refuses to send one): there the
                    # stream is reset by the server when the app ends without the body.
                    headers = [h for h in message.get("headers", []) if h[0] != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracked_receive, guarded_send)
