"""What times the gateway's reads from a volume. A read's clock does not outlive it on a
pooled connection: after an archive read whose last bytes arrived while the client was
not reading (the response paused the socket), the next request on that connection still
succeeds, a stage that sends for longer than the read clock or any request once the
connection sat idle that long. And a volume that goes silent before its headers, or
after them in the middle of its rows, is dropped after the read clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.objects.volume_errors import VolumeUnavailable
from tests.unit.stand_in_volume import client_of

pytestmark = pytest.mark.anyio
READ_CLOCK = 0.5  # the client's metadata timeout, which also times the wait for headers
KIB = 1024
PORTS = web.AppKey("ports", list)


def peer_port(request: web.Request) -> int:
    """The client's port: the same one for two requests means one pooled connection."""
    return request.transport.get_extra_info("peername")[1]


async def archive(request: web.Request) -> web.Response:
    """The whole range at once, so it is in flight before the client reads."""
    request.app[PORTS].append(peer_port(request))
    first, last = request.headers["Range"].removeprefix("bytes=").split("-")
    return web.Response(body=b"a" * (int(last) - int(first) + 1), status=206)


async def stage(request: web.Request) -> web.Response:
    request.app[PORTS].append(peer_port(request))
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
    return web.json_response({"received": received})


def stand_in() -> web.Application:
    app = web.Application()
    app[PORTS] = []
    app.router.add_get("/archives/{archive_id}", archive)
    app.router.add_put("/stage/{stage_id}", stage)
    return app


async def slow_body(seconds: float) -> AsyncIterator[bytes]:
    """A stage body that keeps sending, and the volume silent, for `seconds`."""
    for _ in range(round(seconds / 0.05)):
        yield b"s" * (64 * KIB)
        await asyncio.sleep(0.05)


async def paused_read(client, size: int) -> None:  # noqa: ANN001 - a VolumeClient
    stream = await client.open_archive("v1", "a", 0, size - 1)
    await asyncio.sleep(0.05)  # the body arrives and fills the reader: it pauses
    assert await stream.read_exactly(size) == b"a" * size
    stream.close()


@pytest.mark.parametrize("size_kib", [576, 640, 704])
async def test_a_stage_after_a_paused_read_is_not_timed_by_it(size_kib: int) -> None:
    app = stand_in()
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        await paused_read(client, size_kib * KIB)
        answer = await client.stage("v1", "s1", slow_body(3 * READ_CLOCK))
        assert answer["received"] == round(3 * READ_CLOCK / 0.05) * 64 * KIB
    assert len(app[PORTS]) == 2 and app[PORTS][0] == app[PORTS][1]


@pytest.mark.parametrize("size_kib", [576, 704])
async def test_a_request_on_a_connection_idle_after_a_paused_read_succeeds(size_kib: int
                                                                          ) -> None:
    app = stand_in()
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        await paused_read(client, size_kib * KIB)
        await asyncio.sleep(2 * READ_CLOCK)  # the connection waits in the pool
        answer = await client.stage("v1", "s2", slow_body(0.05))
        assert answer["received"] == 64 * KIB
    assert len(app[PORTS]) == 2 and app[PORTS][0] == app[PORTS][1]


async def silent_before_headers(request: web.Request) -> web.Response:
    await asyncio.sleep(8 * READ_CLOCK)
    return web.Response(body=b"late")


async def silent_in_rows(request: web.Request) -> web.StreamResponse:
    """Headers, a few bytes of the body, then nothing: with rows framed or not, or as an
    error's body."""
    framed = request.query["key"] == "framed"
    headers = {"x-rows-length": "100", "x-archive-bytes": "0"} if framed else {}
    response = web.StreamResponse(status=500 if request.query["key"] == "error" else 200,
                                  headers=headers)
    response.content_length = 100
    await response.prepare(request)
    await response.write(b"{" * 10)
    await asyncio.sleep(8 * READ_CLOCK)
    return response


async def test_a_volume_silent_before_its_headers_is_down_after_the_read_clock() -> None:
    app = web.Application()
    app.router.add_get("/archives/{archive_id}", silent_before_headers)
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(VolumeUnavailable):  # not the wait_for's TimeoutError
            await asyncio.wait_for(client.open_archive("v1", "a", 0, 3), 6 * READ_CLOCK)
        assert asyncio.get_running_loop().time() - started < 3 * READ_CLOCK


@pytest.mark.parametrize("key", ["framed", "plain", "error"])
async def test_a_volume_silent_in_its_rows_is_down_after_the_read_clock(key: str) -> None:
    app = web.Application()
    app.router.add_get("/objects/latest", silent_in_rows)
    async with client_of(app, metadata_timeout=READ_CLOCK) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(VolumeUnavailable):  # not the wait_for's TimeoutError
            await asyncio.wait_for(
                client.latest_and_read("v1", "i", key, "v2", "a", 0, 9), 6 * READ_CLOCK)
        assert asyncio.get_running_loop().time() - started < 3 * READ_CLOCK
