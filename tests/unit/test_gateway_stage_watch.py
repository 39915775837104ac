"""The watch on heal and move stages: a volume that stops taking bytes, or takes them all
and never answers, fails the stage after its clock instead of holding it for ever; a
body that is slow to produce (a slow source) is not the volume's fault."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.objects.stage_watch import watched_stage
from gateway.objects.volume_errors import VolumeUnavailable
from tests.unit.stand_in_volume import client_of

pytestmark = pytest.mark.anyio
CLOCK = 0.3
PIECE = b"p" * (64 * 1024)
RELEASE = web.AppKey("release", asyncio.Event)


async def stage(request: web.Request) -> web.Response:
    """Takes the body as the stage id says: all of it, 1 MiB and then nothing, or all of
    it with no answer until the test ends."""
    how = request.match_info["stage_id"]
    received = 0
    async for chunk in request.content.iter_any():
        received += len(chunk)
        if how == "stops" and received >= 1 << 20:
            await request.app[RELEASE].wait()
    if how == "mute":
        await request.app[RELEASE].wait()
    return web.json_response({"received": received})


async def pieces(count: int | None, gap: float = 0.0,
                 closed: list[bool] | None = None) -> AsyncIterator[bytes]:
    """`count` pieces (None: without end), `gap` seconds apart; `closed` learns that the
    source was closed (as an archive read is when its stage is given up)."""
    sent = 0
    try:
        while count is None or sent < count:
            if gap:
                await asyncio.sleep(gap)
            yield PIECE
            sent += 1
    finally:
        if closed is not None:
            closed.append(True)


async def run(stage_id: str, body: AsyncIterator[bytes], clock: float = CLOCK) -> dict:
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_put("/stage/{stage_id}", stage)
    async with client_of(app) as client:
        try:
            return await watched_stage(
                "v1", body, lambda watched: client.stage("v1", stage_id, watched),
                stall_seconds=clock, answer_seconds=clock, poll_seconds=0.05)
        finally:
            app[RELEASE].set()


async def test_a_volume_that_takes_the_body_and_answers_is_waited_for() -> None:
    # A clock no pause of a loaded machine reaches: only the answer is checked here.
    assert await run("takes", pieces(64), clock=10.0) == {"received": 64 * len(PIECE)}


async def test_a_slow_source_is_not_the_volume_stalling() -> None:
    assert await run("takes", pieces(3, gap=1.0), clock=0.5) == {"received": 3 * len(PIECE)}


async def test_a_volume_that_stops_taking_bytes_fails_the_stage() -> None:
    closed: list[bool] = []
    with pytest.raises(VolumeUnavailable, match="took no bytes"):
        await asyncio.wait_for(run("stops", pieces(None, closed=closed)), 60 * CLOCK)
    assert closed == [True]  # the source was closed with the stage


async def test_a_volume_that_never_answers_fails_the_stage() -> None:
    with pytest.raises(VolumeUnavailable, match="no answer"):
        await asyncio.wait_for(run("mute", pieces(16)), 60 * CLOCK)
