"""gateway.drain: an early answer waits until the unread request body has been drained."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.drain import DrainUnreadBody

Message = dict[str, Any]


class Wire:
    """The server side of one request: body messages to hand out and a log of events."""

    def __init__(self, chunks: list[bytes] | None = None, tail: list[Message] | None = None
                 ) -> None:
        self.pending: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks or [])]
        self.pending += tail or []
        self.log: list[str] = []
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        assert self.pending, "read past the end of the request"
        message = self.pending.pop(0)
        self.log.append(f"receive:{len(message.get('body', b''))}")
        return message

    async def send(self, message: Message) -> None:
        self.log.append(f"send:{message['type']}")
        self.sent.append(message)

    @property
    def start(self) -> Message:
        return next(m for m in self.sent if m["type"] == "http.response.start")


def scope(*headers: tuple[bytes, bytes], kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": "PUT", "path": "/b/k", "headers": list(headers)}


def early_answer(status: int = 403, headers: list | None = None):
    """An app that answers at once, never reading the body."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": headers or [(b"content-type", b"application/xml")]})
        await send({"type": "http.response.body", "body": b"<Error/>"})
    return app


def reads_then_answers(reads: int):
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for _ in range(reads):
            await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    return app


def serve(app: Any, wire: Wire, request: dict[str, Any], limit: int | None = None) -> None:
    middleware = DrainUnreadBody(app) if limit is None else DrainUnreadBody(app, limit)
    asyncio.run(middleware(request, wire.receive, wire.send))


def connection_headers(message: Message) -> list[bytes]:
    return [v for k, v in message["headers"] if k == b"connection"]


def test_unread_body_is_drained_before_the_answer_starts() -> None:
    wire = Wire([b"a" * 10, b"b" * 10, b"c" * 5])
    serve(early_answer(), wire, scope((b"content-length", b"25")))
    assert wire.log == ["receive:10", "receive:10", "receive:5",
                        "send:http.response.start", "send:http.response.body"]
    assert connection_headers(wire.start) == []
    assert wire.start["status"] == 403


def test_chunked_body_without_length_is_drained() -> None:
    wire = Wire([b"x" * 4, b"y" * 4])
    serve(early_answer(), wire, scope((b"transfer-encoding", b"chunked")))
    assert wire.log[:3] == ["receive:4", "receive:4", "send:http.response.start"]


def test_past_the_limit_the_answer_closes_the_connection() -> None:
    wire = Wire([b"z" * 8] * 5)
    keep = [(b"content-type", b"application/xml"), (b"connection", b"keep-alive")]
    serve(early_answer(503, keep), wire, scope((b"content-length", b"40")), limit=10)
    assert wire.log[:3] == ["receive:8", "receive:8", "send:http.response.start"]
    assert connection_headers(wire.start) == [b"close"]
    assert (b"content-type", b"application/xml") in wire.start["headers"]
    assert wire.start["status"] == 503
    assert len(wire.pending) == 3   # the rest is left to the closing connection


def test_body_exactly_at_the_limit_keeps_the_connection() -> None:
    wire = Wire([b"z" * 5, b"z" * 5])
    serve(early_answer(), wire, scope((b"content-length", b"10")), limit=10)
    assert connection_headers(wire.start) == []
    assert not wire.pending


def test_request_without_body_is_never_read() -> None:
    for headers in ((), ((b"content-length", b"0"),), ((b"content-length", b"junk"),)):
        wire = Wire()
        serve(early_answer(), wire, scope(*headers))
        assert wire.log == ["send:http.response.start", "send:http.response.body"]
        assert connection_headers(wire.start) == []


def test_body_the_app_read_is_not_read_again() -> None:
    wire = Wire([b"a" * 3, b"b" * 3])
    serve(reads_then_answers(2), wire, scope((b"content-length", b"6")))
    assert wire.log == ["receive:3", "receive:3", "send:http.response.start",
                        "send:http.response.body"]


def test_partly_read_body_is_finished() -> None:
    wire = Wire([b"a" * 3, b"b" * 3, b"c" * 3])
    serve(reads_then_answers(1), wire, scope((b"content-length", b"9")))
    assert wire.log[:4] == ["receive:3", "receive:3", "receive:3", "send:http.response.start"]


def test_client_disconnect_stops_draining() -> None:
    wire = Wire([], tail=[{"type": "http.request", "body": b"a" * 4, "more_body": True},
                          {"type": "http.disconnect"}])
    serve(early_answer(), wire, scope((b"content-length", b"100")))
    assert wire.log[:3] == ["receive:4", "receive:0", "send:http.response.start"]
    assert connection_headers(wire.start) == []


def test_non_http_scopes_pass_through() -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["type"], receive, send))

    wire = Wire()
    serve(app, wire, scope(kind="lifespan"))
    assert seen == [("lifespan", wire.receive, wire.send)]
