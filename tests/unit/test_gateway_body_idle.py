"""gateway.body_idle and gateway.body: a silent request body is given up, only the time
spent waiting for the client counts, and the handler's reader sees RequestTimeout."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request

from gateway.auth.context import (
    SHA256_PAYLOAD,
    STREAMING_SIGNED,
    STREAMING_UNSIGNED_TRAILER,
    AuthContext,
)
from gateway.body import RequestBody
from gateway.body_idle import BodyIdleTimeout, body_timed_out
from gateway.drain import DrainUnreadBody
from gateway.errors import S3Error
from shardgate.config import ConfigError

Message = dict[str, Any]
GUARD = 10.0  # no test here should come near this; it only stops a hang


def chunk(data: bytes, more: bool = True) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


class Client:
    """The server side of one request: messages handed out after a delay, then silence."""

    def __init__(self, messages: list[Message], delay: float = 0.0,
                 then_silent: bool = True) -> None:
        self.messages = list(messages)
        self.delay = delay
        self.then_silent = then_silent
        self.calls = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.messages:
            return self.messages.pop(0)
        if self.then_silent:
            await asyncio.Event().wait()
        return {"type": "http.disconnect", "real": True}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def http_scope(*headers: tuple[bytes, bytes], method: str = "PUT") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/b/k", "raw_path": b"/b/k",
            "query_string": b"", "headers": list(headers)}


def run(coro: Any) -> Any:
    async def guarded() -> Any:
        async with asyncio.timeout(GUARD):
            return await coro
    return asyncio.run(guarded())


def reading_app(reads: int, pause: float = 0.0, log: list[Message] | None = None):
    """An app that calls receive() `reads` times, pausing between calls (a slow volume)."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for _ in range(reads):
            (log if log is not None else []).append(await receive())
            if pause:
                await asyncio.sleep(pause)
    return app


def test_a_silent_body_is_given_up_as_a_disconnect() -> None:
    log: list[Message] = []
    client = Client([chunk(b"a" * 10)])
    scope = http_scope((b"content-length", b"100"))
    run(BodyIdleTimeout(reading_app(3, log=log), 0.2)(scope, client.receive, client.send))
    assert log[0]["body"] == b"a" * 10
    assert log[1] == {"type": "http.disconnect"}
    assert log[2] == {"type": "http.disconnect"}  # answered at once, the client not asked
    assert client.calls == 2
    assert body_timed_out(scope)


def test_time_between_receives_is_not_counted() -> None:
    """The app pauses three times the timeout between chunks that were already there."""
    log: list[Message] = []
    client = Client([chunk(b"a"), chunk(b"b"), chunk(b"c", more=False)])
    scope = http_scope((b"content-length", b"3"))
    run(BodyIdleTimeout(reading_app(3, pause=0.3, log=log), 0.1)(
        scope, client.receive, client.send))
    assert [m["body"] for m in log] == [b"a", b"b", b"c"]
    assert not body_timed_out(scope)


def test_each_chunk_restarts_the_clock() -> None:
    """Eight chunks 0.1 s apart take far longer than the 0.6 s timeout, none times out."""
    log: list[Message] = []
    client = Client([chunk(b"x")] * 7 + [chunk(b"y", more=False)], delay=0.1)
    scope = http_scope((b"content-length", b"8"))
    run(BodyIdleTimeout(reading_app(8, log=log), 0.6)(scope, client.receive, client.send))
    assert [m["body"] for m in log] == [b"x"] * 7 + [b"y"]
    assert not body_timed_out(scope)


def test_after_the_body_receive_is_not_timed() -> None:
    """Once the body ended, receive() only waits for a disconnect (Starlette listens for
    one while streaming a download): that wait is never cut short."""
    log: list[Message] = []
    client = Client([chunk(b"", more=False)], delay=0.0, then_silent=False)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        log.append(await receive())
        client.delay = 0.4
        log.append(await receive())

    scope = http_scope(method="GET")
    run(BodyIdleTimeout(app, 0.1)(scope, client.receive, client.send))
    assert log[1] == {"type": "http.disconnect", "real": True}
    assert not body_timed_out(scope)


def test_non_http_scopes_pass_through() -> None:
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append((scope["type"], receive))

    client = Client([])
    run(BodyIdleTimeout(app, 0.1)({"type": "lifespan"}, client.receive, client.send))
    assert seen == [("lifespan", client.receive)]


def test_the_timeout_must_be_positive() -> None:
    for bad in (0, -1.0):
        with pytest.raises(ConfigError):
            BodyIdleTimeout(reading_app(0), bad)


def test_the_drain_behind_an_early_answer_stops_waiting() -> None:
    """An early answer (AccessDenied) is held until the body is drained; a client that
    goes silent mid-body no longer holds it forever."""
    client = Client([chunk(b"z" * 1000)])

    async def early_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await send({"type": "http.response.body", "body": b"<Error/>"})

    app = BodyIdleTimeout(DrainUnreadBody(early_answer), 0.2)
    scope = http_scope((b"content-length", b"100000"))
    run(app(scope, client.receive, client.send))
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.sent[0]["status"] == 403
    assert body_timed_out(scope)


AUTHS = {
    "plain": (None, []),
    "sha256": (AuthContext("AK", b"k" * 32, "20250101/us-east-1/s3/aws4_request",
                           "20250101T000000Z", "0" * 64, SHA256_PAYLOAD, "ab" * 32), []),
    "aws-chunked": (AuthContext("AK", b"k" * 32, "20250101/us-east-1/s3/aws4_request",
                                "20250101T000000Z", "0" * 64, STREAMING_SIGNED),
                    [(b"x-amz-decoded-content-length", b"5000")]),
    "anonymous-trailer": (None, [(b"x-amz-content-sha256",
                                  STREAMING_UNSIGNED_TRAILER.encode())]),
}


def _first_bytes(mode: str) -> bytes:
    if mode == "aws-chunked":
        return b"1388;chunk-signature=" + b"0" * 64 + b"\r\n" + b"d" * 100
    if mode == "anonymous-trailer":
        return b"1388\r\n" + b"d" * 100
    return b"d" * 100


@pytest.mark.parametrize("mode", list(AUTHS))
def test_the_body_reader_raises_request_timeout(mode: str) -> None:
    auth, extra = AUTHS[mode]
    scope = http_scope((b"transfer-encoding", b"chunked"), *extra)
    client = Client([chunk(_first_bytes(mode))])
    outcome: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        received = b""
        try:
            async for piece in RequestBody(request, headers, auth):
                received += piece
        except S3Error as exc:
            outcome.append((exc.code, exc.status, received))

    run(BodyIdleTimeout(app, 0.2)(scope, client.receive, client.send))
    assert outcome == [("RequestTimeout", 400, b"d" * 100)]


def test_a_client_really_gone_stays_a_disconnect() -> None:
    client = Client([chunk(b"d" * 10)], then_silent=False)
    outcome: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            async for _ in RequestBody(Request(scope, receive), {}, None):
                pass
        except ClientDisconnect:
            outcome.append("disconnect")

    run(BodyIdleTimeout(app, 5.0)(http_scope((b"content-length", b"100")), client.receive,
                                 client.send))
    assert outcome == ["disconnect"]
