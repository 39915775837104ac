"""A stage that a silent volume cannot hold for ever: the watch on heal and move uploads.

A stage request carries no read clock (volume_transport.py): it lasts as long as its body
does, which for a heal or a move is as long as the archive. A volume that stops taking
bytes (a stuck disk, a stopped process) would then hold the heal or move, and its slot,
for good. The watch times only what the volume owes: taking the next piece once it was
handed over, and answering once the body has ended. Time spent producing the body
(reading and checking the source fragments, each read timed already) does not count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gateway.objects.cluster import Cluster
from gateway.objects.volume_errors import VolumeUnavailable

T = TypeVar("T")

POLL_SECONDS = 1.0


class _Progress:
    """When the volume last became the one we wait for, and for what."""

    def __init__(self) -> None:
        self.handed_at: float | None = None  # a piece is with the volume's connection
        self.ended_at: float | None = None  # the body ended; the answer is owed

    async def track(self, body: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        loop = asyncio.get_running_loop()
        try:
            async for piece in body:
                self.handed_at = loop.time()
                yield piece  # resumed once the connection took it and asks for the next
                self.handed_at = None
            self.ended_at = loop.time()
        finally:  # given up mid-body: the source (an open archive read) closes now
            close = getattr(body, "aclose", None)
            if close is not None:
                await close()

    def overdue(self, now: float, stall: float, answer: float) -> str | None:
        if self.handed_at is not None and now - self.handed_at > stall:
            return f"took no bytes for {stall:g}s"
        if self.ended_at is not None and now - self.ended_at > answer:
            return f"no answer {answer:g}s after the body ended"
        return None


async def watched_stage(volume_id: str, body: AsyncIterator[bytes],
                        stage: Callable[[AsyncIterator[bytes]], Awaitable[T]],
                        stall_seconds: float, answer_seconds: float,
                        poll_seconds: float = POLL_SECONDS) -> T:
    """`stage(body)`, cancelled and raised as VolumeUnavailable once the volume has owed
    the next step for too long: taking a piece for `stall_seconds`, or answering after
    the body for `answer_seconds`."""
    progress = _Progress()
    tracked = progress.track(body)
    task = asyncio.ensure_future(stage(tracked))
    loop = asyncio.get_running_loop()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_seconds)
            if done:
                return task.result()
            why = progress.overdue(loop.time(), stall_seconds, answer_seconds)
            if why is not None:
                raise VolumeUnavailable(volume_id, f"stage {why}")
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)  # its outcome, retrieved
        # The HTTP client does not close a body it stopped sending; closing it here
        # closes the source with it (a no-op once the body was sent whole).
        with contextlib.suppress(RuntimeError):  # still inside the client's writer
            await tracked.aclose()


async def watched_repair_stage(cluster: Cluster, volume_id: str, stage_id: str,
                               body: AsyncIterator[bytes], size: int, *, inline: bool,
                               around_cache: bool) -> dict:
    """A heal's or a move's stage of one archive, under the watch with the cluster's
    clocks (`[durability] stage_stall_seconds`, `stage_answer_seconds`)."""
    durability = cluster.config.durability
    return await watched_stage(
        volume_id, body,
        lambda pieces: cluster.volumes.stage(volume_id, stage_id, pieces, size,
                                             inline=inline, around_cache=around_cache),
        durability.stage_stall_seconds, durability.stage_answer_seconds)
