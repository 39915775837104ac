"""ASGI middleware: at most N S3 requests at once per process, a bounded queue, then SlowDown.

A request holds its slot until its answer has been sent, so slow clients count against
the limit as much as slow volumes do. Past the limit a request waits, FIFO, in a queue of
bounded length for a bounded time; a full queue or a wait that runs out answers 503
SlowDown, which SDKs retry with backoff. Paths in `bypass` (the health check) are never
limited, so a saturated gateway still reports itself alive.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable

from starlette.responses import Response

from gateway.body_idle import ASGIApp, Receive, Scope, Send
from gateway.errors import S3Error
from gateway.xml import error_document
from shardgate.config import ConfigError

log = logging.getLogger("shardgate.gateway")

REJECTION_LOG_INTERVAL = 10.0  # seconds between two "shedding load" warnings


class Slots:
    """A counting semaphore with a bounded FIFO queue and a bounded wait.

    A released slot passes straight to the oldest waiter, so a newcomer never overtakes
    the queue; a waiter that gives up after being handed a slot passes it on.
    """

    def __init__(self, limit: int, max_queued: int) -> None:
        self.limit = limit
        self.max_queued = max_queued
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, wait: float) -> bool:
        """Take a slot, waiting at most `wait` seconds in the queue; False if none came."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return True
        if len(self._waiters) >= self.max_queued:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException as exc:  # the wait ran out, or the request was cancelled
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                return False
            raise
        return True  # release() counted the slot as ours

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


class ConcurrencyLimit:
    def __init__(self, app: ASGIApp, limit: int, max_queued: int, queue_wait: float,
                 bypass: Iterable[str] = ()) -> None:
        if limit < 1:
            raise ConfigError("[gateway] max_concurrent_requests must be at least 1")
        if max_queued < 0:
            raise ConfigError("[gateway] max_queued_requests must not be negative")
        if queue_wait < 0:
            raise ConfigError("[gateway] queue_wait_seconds must not be negative")
        self.app = app
        self.slots = Slots(limit, max_queued)
        self.queue_wait = float(queue_wait)
        self.bypass = frozenset(bypass)
        self.rejected = 0
        self._last_warning = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.bypass:
            await self.app(scope, receive, send)
            return
        if not await self.slots.acquire(self.queue_wait):
            self._note_rejection()
            await slow_down(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    def _note_rejection(self) -> None:
        self.rejected += 1
        now = time.monotonic()
        if now - self._last_warning >= REJECTION_LOG_INTERVAL:
            self._last_warning = now
            log.warning("shedding load: %d requests active, %d queued; %d answered "
                        "SlowDown so far", self.slots.active, self.slots.queued,
                        self.rejected)


async def slow_down(scope: Scope, receive: Receive, send: Send) -> None:
    """503 SlowDown as S3 renders it (XML with a request id; headers only for HEAD)."""
    error = S3Error("SlowDown")
    request_id = uuid.uuid4().hex[:16].upper()
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id,
               "Server": "shardgate"}
    if scope.get("method") == "HEAD":
        response = Response(status_code=error.status, headers=headers)
    else:
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("latin-1")
        body = error_document(error.code, error.message, request_id,
                              {"Resource": raw_path.decode("latin-1")})
        response = Response(body, status_code=error.status, headers=headers,
                            media_type="application/xml")
    await response(scope, receive, send)
