"""Small requests to one volume, batched: whatever queued while the previous request to
that volume was on its way goes in the next one.

Under load, many concurrent S3 requests each need a small answer from the same volume
(the rows of a key, a durable notice). One HTTP request per answer costs both sides far
more than the answer; one request for all that queued costs the same as one. An idle
volume gets its request at once: nothing waits on a timer, and a batch only ever holds
items queued before it was sent, so an answer is never older than the call that asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.objects.volume_errors import VolumeUnavailable

Item = TypeVar("Item")
Answer = TypeVar("Answer")

# Sends a batch to a volume; answers by position, an exception in place of an answer
# fails that item alone, a raised one fails the whole batch.
SendBatch = Callable[[str, list[Item]], Awaitable[list["Answer | BaseException"]]]


class VolumeBatches(Generic[Item, Answer]):
    """Per-volume queues, each drained by one task at a time, `max_batch` items a request."""

    def __init__(self, send_batch: SendBatch, max_batch: int) -> None:
        self._send_batch = send_batch
        self.max_batch = max_batch
        self._queues: dict[str, list[tuple[Item, asyncio.Future[Answer]]]] = {}
        self._draining: dict[str, asyncio.Task] = {}

    def send(self, volume_id: str, item: Item) -> asyncio.Future[Answer]:
        """Queue `item` for `volume_id`; the future holds its answer or its error."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(volume_id, []).append((item, future))
        if volume_id not in self._draining:
            self._draining[volume_id] = asyncio.create_task(self._drain(volume_id))
        return future

    async def _drain(self, volume_id: str) -> None:
        queue = self._queues[volume_id]
        batch: list[tuple[Item, asyncio.Future[Answer]]] = []
        try:
            while queue:
                batch = [(item, future) for item, future in queue[:self.max_batch]
                         if not future.done()]  # a caller that gave up is not asked for
                del queue[:self.max_batch]
                if not batch:
                    continue
                try:
                    answers = await self._send_batch(volume_id, [item for item, _ in batch])
                    if len(answers) != len(batch):
                        raise RuntimeError(f"{len(answers)} answers to {len(batch)} items")
                except Exception as exc:  # noqa: BLE001 - handed to every waiter
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            # No await between the empty queue and this line: an item queued after it
            # starts a new drain.
            self._draining.pop(volume_id, None)
            # Only if this task was cancelled is anything left: its callers are told.
            for _, future in batch + queue:
                if not future.done():
                    future.set_exception(VolumeUnavailable(volume_id, "request abandoned"))
            queue.clear()
