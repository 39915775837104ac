"""ASGI middleware: a request body that stops arriving is given up after an idle timeout.

The clock runs only inside `receive()` while the body is unfinished, that is while the
gateway waits for the client's next chunk: time spent on volumes between two `receive()`
calls never counts, and a request without a body is never timed. Plain, aws-chunked and
HTTP-chunked bodies all arrive through `receive()`, so one timer covers them all.

On expiry `receive()` answers `http.disconnect`, now and on every later call, so both the
handler's body reader and DrainUnreadBody (which reads the rest of a body behind an early
answer, e.g. AccessDenied) stop waiting; the scope records why, so the body reader turns
the disconnect into S3's 400 RequestTimeout (gateway.body). Over HTTP/1.1 the connection
is closed after the answer: Hypercorn never reuses one whose request body did not end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shardgate.config import ConfigError

log = logging.getLogger("shardgate.gateway")

Scope = MutableMapping[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "shardgate.body_idle"
DISCONNECT: Message = {"type": "http.disconnect"}


class BodyWait:
    """Per request: has the body ended, and did we give up waiting for it?"""

    __slots__ = ("complete", "timed_out")

    def __init__(self) -> None:
        self.complete = False
        self.timed_out = False


def body_timed_out(scope: Scope) -> bool:
    """True once BodyIdleTimeout gave up on this request's body."""
    state = scope.get(SCOPE_KEY)
    return isinstance(state, BodyWait) and state.timed_out


class BodyIdleTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        if not seconds > 0:
            raise ConfigError("[gateway] body_idle_timeout_seconds must be positive")
        self.app = app
        self.seconds = float(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = BodyWait()
        scope[SCOPE_KEY] = state

        async def timed_receive() -> Message:
            if state.timed_out:
                return dict(DISCONNECT)
            if state.complete:  # e.g. Starlette listening for a disconnect: never timed
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                state.timed_out = True
                log.info("%s %s: no request body bytes for %gs, giving up",
                         scope.get("method", ""), scope.get("path", ""), self.seconds)
                return dict(DISCONNECT)
            if message["type"] != "http.request" or not message.get("more_body", False):
                state.complete = True
            return message

        await self.app(scope, timed_receive, send)
