"""Write path, phase one: stream a body into erasure-coded fragment archives, staged.

The body is cut into segments, each encoded into k+m framed fragments; fragment i of
every segment goes to volume placement[i] as one streaming PUT. Memory is bounded by
the per-volume queues (a few fragments each), whatever the object size. A volume that
fails drops out; once fewer than the write quorum remain the write is abandoned and
everything staged is removed (docs/architecture.md, PUT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect

from erasure import Segmenter
from gateway.errors import S3Error, quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.digests import BodyDigests
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable

log = logging.getLogger("shardgate.gateway.objects.writer")

QUEUE_DEPTH = 4
STALL_SECONDS = 10.0  # a volume that takes no fragment for this long is dropped
# Once a quorum has staged: a lane still receiving gets STAGE_GRACE_SECONDS more; one
# that has taken its whole archive is only fsyncing, which a busy disk can make slow,
# so it gets FSYNC_GRACE_SECONDS before it is left to healing. No lane waits past
# FINISH_SECONDS after the body ended.
STAGE_GRACE_SECONDS = 2.0
FSYNC_GRACE_SECONDS = 15.0
FINISH_SECONDS = 60.0
THREAD_THRESHOLD = 64 * 1024


@dataclass
class Staged:
    """Archives staged on a quorum of volumes, waiting for commit or abort."""

    placement: tuple[str, ...]
    stage_ids: dict[int, str]
    size: int
    digests: BodyDigests
    failed: dict[int, str] = field(default_factory=dict)

    def staged_placement(self) -> tuple[str | None, ...]:
        return tuple(vid if i in self.stage_ids else None for i, vid in enumerate(self.placement))


class _Lane:
    """One fragment index: a bounded queue feeding one streaming PUT to one volume."""

    def __init__(self, index: int, volume_id: str, stage_id: str) -> None:
        self.index = index
        self.volume_id = volume_id
        self.stage_id = stage_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_DEPTH)
        self.task: asyncio.Task | None = None
        self.error: str | None = None
        self.sent_all = False  # the volume has taken every fragment of the archive

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                self.sent_all = True
                return
            yield item

    def on_done(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self.error = self.error or "cancelled"
        elif task.exception() is not None:
            self.error = repr(task.exception())
        if self.error:  # unblock a producer waiting on a full queue
            while not self.queue.empty():
                self.queue.get_nowait()

    def stall(self) -> None:
        """The volume stopped taking data: drop it so the quorum can go on without it."""
        self.error = f"stalled for {STALL_SECONDS}s"
        if self.task is not None:
            self.task.cancel()
        while not self.queue.empty():
            self.queue.get_nowait()

    @property
    def alive(self) -> bool:
        return self.error is None


async def stage_body(cluster: Cluster, placement: tuple[str, ...],
                     body: AsyncIterator[bytes], digests: BodyDigests,
                     expected_size: int | None = None,
                     seeds: list[int] | None = None, part: bool = False) -> Staged:
    """Encode `body` onto `placement` and stage it; raise 503 if the quorum is lost.
    `part`: the body is a multipart upload's part (a bulk write, as a large PUT is:
    written around the volumes' page cache by default; ClusterConfig.is_bulk).

    On any exception from `body` (client gone, bad digest, bad signature) every staged
    file is removed before the exception propagates.
    """
    codec = cluster.codec
    quorum = cluster.ack_quorum
    batch = uuid.uuid4().hex
    lanes = [_Lane(i, vid, f"{batch}.{i}") for i, vid in enumerate(placement)]
    archive_size = codec.layout(expected_size).archive_size if expected_size is not None else None
    # The same rule as the commit's inline choice: a volume may then hold the stage in memory.
    inline = expected_size is not None and expected_size < cluster.config.gateway.inline_threshold
    bulk = cluster.config.is_bulk(expected_size, part)
    for lane in lanes:
        lane.task = asyncio.create_task(
            cluster.volumes.stage(lane.volume_id, lane.stage_id, lane.body(), archive_size,
                                  inline=inline,
                                  around_cache=cluster.config.written_around_cache(
                                      lane.index, bulk)))
        lane.task.add_done_callback(lane.on_done)

    async def push(fragments: list[bytes]) -> None:
        for lane, fragment in zip(lanes, fragments, strict=True):
            if lane.alive:
                try:
                    await asyncio.wait_for(lane.queue.put(fragment), STALL_SECONDS)
                except TimeoutError:
                    lane.stall()
        if sum(lane.alive for lane in lanes) < quorum:
            raise quorum_lost("Too few storage volumes accepted the write.")

    async def encode(segment: bytes) -> list[bytes]:
        if len(segment) < THREAD_THRESHOLD:
            digests.update(segment)
            return codec.encode_segment(segment, seeds)
        fragments, _ = await asyncio.gather(
            asyncio.to_thread(codec.encode_segment, segment, seeds),
            asyncio.to_thread(digests.update, segment))
        return fragments

    segmenter = Segmenter(codec.segment_size)
    try:
        async for chunk in body:
            for segment in segmenter.feed(chunk):
                await push(await encode(segment))
        tail = segmenter.finish()
        if tail:
            await push(await encode(tail))
        for lane in lanes:
            if lane.alive:
                try:
                    await asyncio.wait_for(lane.queue.put(None), STALL_SECONDS)
                except TimeoutError:
                    lane.stall()
        await _await_stages(lanes, quorum)
        cluster.note_answers({lane.volume_id: (Exception(lane.error) if lane.error else True)
                              for lane in lanes})
    except BaseException as exc:
        # The client's fault or a lost quorum is a line; anything else gets its traceback.
        expected = isinstance(exc, (S3Error, ClientDisconnect, asyncio.CancelledError))
        log.warning("write abandoned: %r", exc, exc_info=not expected)
        await _abort_lanes(cluster, lanes)
        raise
    staged = Staged(placement, {}, digests.size, digests)
    for lane in lanes:
        if lane.error is None:
            staged.stage_ids[lane.index] = lane.stage_id
        else:
            staged.failed[lane.index] = lane.error
            log.warning("stage on %s failed: %s", lane.volume_id, lane.error)
            # It may still have finished staging; volumes also empty staging at restart.
            cluster.in_background(_quiet_abort(cluster, lane.volume_id, lane.stage_id))
    if len(staged.stage_ids) < quorum:
        await abort_staged(cluster, staged)
        raise quorum_lost("Too few storage volumes accepted the write.")
    return staged


async def _await_stages(lanes: list[_Lane], quorum: int) -> None:
    """Wait for the stage answers by progress, not by one fixed clock: until a quorum has
    staged, then a short grace for lanes still receiving and a longer one for lanes only
    fsyncing. A lane left behind is cancelled and marked failed (its index is healed)."""
    loop = asyncio.get_running_loop()
    tasks = {lane.task: lane for lane in lanes if lane.task is not None}
    pending = {t for t in tasks if not t.done()}
    finish = loop.time() + FINISH_SECONDS

    def staged() -> int:
        return sum(t.done() and not t.cancelled() and t.exception() is None
                   and tasks[t].error is None for t in tasks)

    while pending and staged() < quorum and loop.time() < finish:
        _, pending = await asyncio.wait(pending, timeout=finish - loop.time(),
                                        return_when=asyncio.FIRST_COMPLETED)
    if pending and staged() >= quorum:
        _, pending = await asyncio.wait(pending, timeout=STAGE_GRACE_SECONDS)
        fsyncing = {t for t in pending if tasks[t].sent_all}
        if fsyncing:
            _, still = await asyncio.wait(fsyncing, timeout=FSYNC_GRACE_SECONDS
                                          - STAGE_GRACE_SECONDS)
            pending = (pending - fsyncing) | still
    for task in pending:
        tasks[task].error = tasks[task].error or "no stage answer in time"
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


async def _abort_lanes(cluster: Cluster, lanes: list[_Lane]) -> None:
    for lane in lanes:
        if lane.task and not lane.task.done():
            lane.task.cancel()
    await asyncio.gather(*(lane.task for lane in lanes if lane.task), return_exceptions=True)
    await asyncio.gather(*(_quiet_abort(cluster, lane.volume_id, lane.stage_id)
                           for lane in lanes), return_exceptions=True)


async def abort_staged(cluster: Cluster, staged: Staged) -> None:
    """Remove staged archives (best effort; volumes also clear staging at restart)."""
    await asyncio.gather(*(_quiet_abort(cluster, staged.placement[i], sid)
                           for i, sid in staged.stage_ids.items()), return_exceptions=True)


async def _quiet_abort(cluster: Cluster, volume_id: str, stage_id: str) -> None:
    with contextlib.suppress(VolumeUnavailable, VolumeRejected):
        await cluster.volumes.abort_stage(volume_id, stage_id)
