"""Durable notices, batched per volume: one request carries every notice that queued
while the previous one was on its way.

A notice only lets a volume drop the rows a version supersedes; the client's answer
never waits for it, and a lost one is made up by the volume itself (docs/durability.md).
So a notice may wait for the request ahead of it, and under load many small writes share
one request and one index transaction on each volume instead of one each. An idle
volume gets a notice at once: nothing waits on a timer.
"""

from __future__ import annotations

import asyncio

from gateway.objects.volume_client import VolumeClient

MAX_BATCH = 256  # notices per request (the volume takes up to 1000)


class DurableNotices:
    """Per-volume queues of durable notices, each drained by one task at a time."""

    def __init__(self, volumes: VolumeClient) -> None:
        self._volumes = volumes
        self._queues: dict[str, list[tuple[dict, asyncio.Future[bool]]]] = {}
        self._draining: dict[str, asyncio.Task] = {}

    def send(self, volume_id: str, notice: dict) -> asyncio.Future[bool]:
        """Queue `notice` for `volume_id`; the future says whether the volume had the
        version (or holds the request's error)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(volume_id, []).append((notice, future))
        if volume_id not in self._draining:
            self._draining[volume_id] = asyncio.create_task(self._drain(volume_id))
        return future

    async def _drain(self, volume_id: str) -> None:
        queue = self._queues[volume_id]
        try:
            while queue:
                batch = queue[:MAX_BATCH]
                del queue[:MAX_BATCH]
                try:
                    found = await self._volumes.mark_durable(volume_id,
                                                             [n for n, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), had in zip(batch, found, strict=True):
                    if not future.done():
                        future.set_result(had)
        finally:
            # No await between the empty queue and this line: a notice queued after it
            # starts a new drain.
            self._draining.pop(volume_id, None)
