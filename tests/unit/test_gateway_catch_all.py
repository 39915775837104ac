"""gateway.catch_all: every path and method reaches the handler, newlines included."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.catch_all import EveryRequest


async def _echo(request: Request) -> Response:
    return PlainTextResponse(f"{request.method} {request.scope['path']!r}")


async def _health(request: Request) -> Response:
    return PlainTextResponse("health")


APP = Starlette(routes=[Route("/-/health", _health, methods=["GET"]), EveryRequest(_echo)])


def _call(method: str, path: str) -> tuple[int, str]:
    """One request straight into the ASGI app: HTTP clients clean control characters out
    of URLs before a server could see them, the server decodes %0A into the path."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path,
             "raw_path": path.encode("utf-8"), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1),
             "server": ("test", 80)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(APP(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body.decode()


def test_newline_and_control_characters_in_path() -> None:
    for path in ("/b/a\nb", "/b/\n", "/b/t\t\r\x01", "/b/键", "/b/\n\n/x\n"):
        assert _call("GET", path) == (200, f"GET {path!r}")


def test_every_method_reaches_the_handler() -> None:
    for method in ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"):
        assert _call(method, "/b/k")[0] == 200, method


def test_earlier_routes_still_win() -> None:
    assert _call("GET", "/-/health") == (200, "health")
    assert _call("PUT", "/-/health") == (200, "PUT '/-/health'")
