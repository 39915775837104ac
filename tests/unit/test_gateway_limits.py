"""gateway.limits: a bounded number of requests at once, a bounded FIFO queue, then 503
SlowDown as S3 XML; the health check is never limited; the [gateway] settings."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from gateway.limits import ConcurrencyLimit, Slots
from shardgate.config import ConfigError, GatewaySpec, parse_config

Message = dict[str, Any]
GUARD = 10.0


def run(coro: Any) -> Any:
    async def guarded() -> Any:
        async with asyncio.timeout(GUARD):
            return await coro
    return asyncio.run(guarded())


# --- Slots ---------------------------------------------------------------------------


def test_slots_up_to_the_limit_are_immediate_then_refused_without_a_queue() -> None:
    async def main() -> None:
        slots = Slots(2, 0)
        assert await slots.acquire(5.0) and await slots.acquire(5.0)
        assert not await slots.acquire(5.0)  # queue of 0: refused at once, no 5 s wait
        assert slots.active == 2
        slots.release()
        assert await slots.acquire(5.0)
    run(main())


def test_released_slots_go_to_waiters_in_order_and_the_queue_is_bounded() -> None:
    async def main() -> None:
        slots = Slots(1, 2)
        order: list[str] = []
        assert await slots.acquire(5.0)

        async def wait(name: str) -> bool:
            got = await slots.acquire(5.0)
            order.append(name)
            return got

        first = asyncio.create_task(wait("first"))
        second = asyncio.create_task(wait("second"))
        await asyncio.sleep(0)
        assert slots.queued == 2
        assert not await slots.acquire(5.0)  # the queue is full
        slots.release()
        assert await first
        assert slots.queued == 1 and slots.active == 1
        slots.release()
        assert await second
        assert order == ["first", "second"]
        slots.release()
        assert slots.active == 0 and slots.queued == 0
    run(main())


def test_a_wait_that_runs_out_leaves_nothing_behind() -> None:
    async def main() -> None:
        slots = Slots(1, 4)
        assert await slots.acquire(1.0)
        assert not await slots.acquire(0.05)
        assert slots.queued == 0 and slots.active == 1
        slots.release()
        assert slots.active == 0
    run(main())


def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    async def main() -> None:
        slots = Slots(1, 4)
        assert await slots.acquire(1.0)
        waiter = asyncio.create_task(slots.acquire(5.0))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert slots.queued == 0
        slots.release()
        assert slots.active == 0
    run(main())


def test_a_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on() -> None:
    async def main() -> None:
        slots = Slots(1, 4)
        assert await slots.acquire(1.0)
        handed = asyncio.create_task(slots.acquire(5.0))
        next_in_line = asyncio.create_task(slots.acquire(5.0))
        await asyncio.sleep(0)
        slots.release()  # hands the slot to `handed`, which has not run yet
        handed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handed
        assert await next_in_line
        assert slots.active == 1 and slots.queued == 0
    run(main())


# --- the middleware ------------------------------------------------------------------


class Gate:
    """An app whose requests stay in flight until released."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered += 1
        if scope["path"] != "/-/health":
            await self.open.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def request(app: Any, path: str = "/bucket/key", method: str = "GET"
                  ) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": []}
    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_past_the_limit_requests_get_slow_down_xml_then_service_resumes() -> None:
    async def main() -> None:
        gate = Gate()
        app = ConcurrencyLimit(gate, 2, 0, 5.0, bypass=("/-/health",))
        held = [asyncio.create_task(request(app)) for _ in range(2)]
        await settle()
        assert gate.entered == 2
        status, headers, body = await request(app, "/bucket/other")
        assert status == 503
        assert headers[b"content-type"].startswith(b"application/xml")
        assert b"<Code>SlowDown</Code>" in body
        request_id = headers[b"x-amz-request-id"].decode()
        assert re.fullmatch(r"[0-9A-F]{16}", request_id)
        assert f"<RequestId>{request_id}</RequestId>".encode() in body
        assert b"<Resource>/bucket/other</Resource>" in body
        assert gate.entered == 2  # the refused request never reached the app
        assert app.rejected == 1
        gate.open.set()
        assert [s for s, _, _ in await asyncio.gather(*held)] == [200, 200]
        assert (await request(app))[0] == 200
        assert app.slots.active == 0
    run(main())


def test_the_health_check_bypasses_a_saturated_limit() -> None:
    async def main() -> None:
        gate = Gate()
        app = ConcurrencyLimit(gate, 1, 0, 5.0, bypass=("/-/health",))
        held = asyncio.create_task(request(app))
        await settle()
        assert (await request(app))[0] == 503
        assert (await request(app, "/-/health"))[0] == 200
        gate.open.set()
        await held
    run(main())


def test_a_queued_request_waits_for_a_slot() -> None:
    async def main() -> None:
        gate = Gate()
        app = ConcurrencyLimit(gate, 1, 1, 5.0)
        first = asyncio.create_task(request(app))
        await settle()
        queued = asyncio.create_task(request(app))
        await settle()
        assert gate.entered == 1 and app.slots.queued == 1
        assert (await request(app))[0] == 503  # the queue of one is full
        gate.open.set()
        assert (await first)[0] == 200 and (await queued)[0] == 200
    run(main())


def test_a_queue_wait_that_runs_out_is_slow_down() -> None:
    async def main() -> None:
        gate = Gate()
        app = ConcurrencyLimit(gate, 1, 1, 0.05)
        held = asyncio.create_task(request(app))
        await settle()
        status, _, body = await request(app)
        assert status == 503 and b"SlowDown" in body
        assert app.slots.queued == 0
        gate.open.set()
        await held
    run(main())


def test_head_gets_slow_down_without_a_body() -> None:
    async def main() -> None:
        gate = Gate()
        app = ConcurrencyLimit(gate, 1, 0, 5.0)
        held = asyncio.create_task(request(app))
        await settle()
        status, headers, body = await request(app, method="HEAD")
        assert status == 503 and body == b"" and b"x-amz-request-id" in headers
        gate.open.set()
        await held
    run(main())


def test_a_failing_request_gives_its_slot_back() -> None:
    async def boom(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("handler bug")

    async def main() -> None:
        app = ConcurrencyLimit(boom, 1, 0, 5.0)
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await request(app)
        assert app.slots.active == 0
    run(main())


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def main() -> None:
        limited = ConcurrencyLimit(app, 1, 0, 5.0)
        await limited({"type": "lifespan"}, None, None)
        assert limited.slots.active == 0
    run(main())
    assert seen == ["lifespan"]


@pytest.mark.parametrize(("limit", "queued", "wait"), [(0, 1, 1.0), (1, -1, 1.0),
                                                       (1, 0, -1.0)])
def test_bad_settings_are_refused(limit: int, queued: int, wait: float) -> None:
    with pytest.raises(ConfigError):
        ConcurrencyLimit(Gate(), limit, queued, wait)


# --- the [gateway] settings ----------------------------------------------------------

VOLUMES = [{"id": f"v{i}", "url": f"http://127.0.0.1:{9100 + i}"} for i in range(6)]


def config(**gateway: Any) -> GatewaySpec:
    return parse_config({"jwt_secret": "s" * 32, "volumes": VOLUMES,
                         "gateway": gateway}).gateway


def test_gateway_limits_have_defaults_and_are_read_from_the_file() -> None:
    default = config()
    assert (default.body_idle_timeout_seconds, default.keep_alive_timeout_seconds,
            default.max_concurrent_requests, default.max_queued_requests,
            default.queue_wait_seconds) == (20.0, 75.0, 256, 512, 2.0)
    custom = config(body_idle_timeout_seconds=3, max_concurrent_requests=2,
                    max_queued_requests=0, queue_wait_seconds=0.5,
                    keep_alive_timeout_seconds=4.0)
    assert (custom.body_idle_timeout_seconds, custom.max_concurrent_requests,
            custom.max_queued_requests, custom.queue_wait_seconds,
            custom.keep_alive_timeout_seconds) == (3, 2, 0, 0.5, 4.0)


@pytest.mark.parametrize("setting", [{"max_concurrent_requests": "10"},
                                     {"max_queued_requests": 1.5},
                                     {"body_idle_timeout_seconds": "20"},
                                     {"queue_wait_seconds": True}])
def test_gateway_limits_are_typed(setting: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        config(**setting)


def test_the_keep_alive_timeout_reaches_hypercorn_and_must_be_positive() -> None:
    from shardgate.serving import hypercorn_config

    assert hypercorn_config("127.0.0.1", 1, keep_alive_timeout=4.0).keep_alive_timeout == 4.0
    with pytest.raises(ConfigError):
        hypercorn_config("127.0.0.1", 1, keep_alive_timeout=0)
