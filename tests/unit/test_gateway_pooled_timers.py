"""A read's timeout does not outlive it on a pooled connection. After an archive read
whose last bytes arrived while the client was not reading (the response paused the
socket), the next request on that connection still succeeds: a stage that sends for
longer than the read clock, or any request once the connection sat idle that long."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.objects.volume_errors import VolumeUnavailable
from tests.unit.stand_in_volume import client_of

pytestmark = pytest.mark.anyio
READ_CLOCK = 0.2  # the client's metadata timeout, which also times the wait for headers
KIB = 1024


async def archive(request: web.Request) -> web.Response:
    """The whole range at once, so it is in flight before the client reads."""
    first, last = request.headers["Range"].removeprefix("bytes=").split("-")
    return web.Response(body=b"a" * (int(last) - int(first) + 1), status=206)


async def stage(request: web.Request) -> web.Response:
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
    return web.json_response({"received": received})


async def slow_body(seconds: float) -> AsyncIterator[bytes]:
    """A stage body that keeps sending, and the volume silent, for `seconds`."""
    for _ in range(int(seconds / 0.05)):
        yield b"s" * (64 * KIB)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("size_kib", [576, 640, 704])
async def test_a_stage_after_a_paused_read_is_not_timed_by_it(size_kib: int) -> None:
    app = web.Application()
    app.router.add_get("/archives/{archive_id}", archive)
    app.router.add_put("/stage/{stage_id}", stage)
    size = size_kib * KIB
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        stream = await client.open_archive("v1", "a", 0, size - 1)
        await asyncio.sleep(0.05)  # the body arrives and fills the reader: it pauses
        assert await stream.read_exactly(size) == b"a" * size
        stream.close()
        answer = await client.stage("v1", "s1", slow_body(4 * READ_CLOCK))
        assert answer["received"] == 16 * 64 * KIB


@pytest.mark.parametrize("size_kib", [576, 704])
async def test_a_request_on_a_connection_idle_after_a_paused_read_succeeds(size_kib: int
                                                                          ) -> None:
    app = web.Application()
    app.router.add_get("/archives/{archive_id}", archive)
    app.router.add_put("/stage/{stage_id}", stage)
    size = size_kib * KIB
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        stream = await client.open_archive("v1", "a", 0, size - 1)
        await asyncio.sleep(0.05)
        assert await stream.read_exactly(size) == b"a" * size
        stream.close()
        await asyncio.sleep(2 * READ_CLOCK)  # the connection waits in the pool
        answer = await client.stage("v1", "s2", slow_body(0.05))
        assert answer["received"] == 64 * KIB


async def test_a_volume_silent_before_its_headers_is_down_after_the_read_clock() -> None:
    async def stalls(request: web.Request) -> web.Response:
        await asyncio.sleep(10 * READ_CLOCK)
        return web.Response(body=b"late")

    app = web.Application()
    app.router.add_get("/archives/{archive_id}", stalls)
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(VolumeUnavailable):
            await client.open_archive("v1", "a", 0, 3)
        assert asyncio.get_running_loop().time() - started < 5 * READ_CLOCK
