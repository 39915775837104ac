"""Rebuilding a part's missing or bad fragment archives from good ones, and staging them.

The healer decides what a version lacks (healer.py); this is how the bytes come back:
each segment is rebuilt from k good fragments of that segment, wherever they are, and
streamed as a stage to the volume that will hold it, which the healer then installs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from erasure import Codec
from gateway.objects.cluster import Cluster
from gateway.objects.stage_watch import watched_repair_stage
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from gateway.objects.volume_transport import ArchiveStream


async def rebuild_fragments(cluster: Cluster, codec: Codec, layout,  # noqa: ANN001
                            placement: tuple[str, ...], archives: list[str],
                            bad: dict[int, set[int]], rebuild: list[int],
                            seeds: dict[int, int], inline: bool,
                            bulk: bool = False) -> dict[int, str]:
    """Stage rebuilt archives for `rebuild` on their volumes; their stage ids.

    Every segment is rebuilt from the good fragments of that segment, wherever they
    are: k good ones per segment suffice, even spread over damaged archives."""
    segments = range(layout.num_segments)
    streams = await _sources(cluster, codec.k, layout, placement, archives, bad)
    queues = {i: asyncio.Queue(4) for i in rebuild}
    batch = uuid.uuid4().hex
    stage_ids = {i: f"{batch}.heal.{i}" for i in rebuild}

    async def body(i: int) -> AsyncIterator[bytes]:
        while (item := await queues[i].get()) is not None:
            yield item

    uploads = {i: asyncio.create_task(watched_repair_stage(
        cluster, placement[i], stage_ids[i], body(i), layout.archive_size, inline=inline,
        around_cache=cluster.config.written_around_cache(i, bulk))) for i in rebuild}
    try:
        for segment in segments:
            size = layout.framed_length(segment)
            fragments = {}
            for i, stream in streams.items():
                framed = await stream.read_exactly(size)
                if segment not in bad[i]:
                    fragments[i] = framed
            # Only this segment's missing copies are rebuilt; a target's good copy is
            # kept as read when it is a source (only the fallback opens those).
            bad_here = [i for i in rebuild if i not in fragments]
            rebuilt = (await asyncio.to_thread(codec.reconstruct, fragments, bad_here, seeds)
                       if bad_here else {})
            for i in rebuild:
                await _feed(queues[i], rebuilt[i] if i in bad_here else fragments[i],
                            uploads[i], placement[i])
        for i in rebuild:
            await _feed(queues[i], None, uploads[i], placement[i])
        await asyncio.gather(*uploads.values())
    except BaseException:
        for task in uploads.values():
            task.cancel()
        await asyncio.gather(*uploads.values(), return_exceptions=True)
        await unstage(cluster, placement, stage_ids)
        raise
    finally:
        for stream in streams.values():
            stream.close()
    return stage_ids


async def unstage(cluster: Cluster, placement: tuple[str, ...],
                  stage_ids: dict[int, str]) -> None:
    """Remove rebuilt stages a failed heal leaves (a repaired one is gone already)."""
    await asyncio.gather(*(cluster.volumes.abort_stage(placement[i], sid)
                           for i, sid in stage_ids.items()), return_exceptions=True)


async def _open(cluster: Cluster, volume_id: str, archive: str, layout,  # noqa: ANN001
                segment: int) -> ArchiveStream | None:
    try:
        return await cluster.volumes.open_archive(
            volume_id, archive, layout.archive_offset(segment), layout.archive_size - 1)
    except (VolumeUnavailable, VolumeRejected):
        return None


async def _sources(cluster: Cluster, k: int, layout,  # noqa: ANN001
                   placement: tuple[str, ...], archives: list[str],
                   bad: dict[int, set[int]]) -> dict[int, ArchiveStream]:
    """Streams of the fragments to rebuild from: k archives that verified whole, if k of
    them open (each rebuilt fragment is then computed whole, byte-identical); else every
    archive with a good segment, so each segment can find k good ones spread over
    damaged archives. A source that rots or dies after its check fails the rebuild (its
    frames are checked again), and the next round finds it."""
    whole = [i for i in range(len(placement)) if not bad.get(i)]
    damaged = [i for i in range(len(placement))
               if bad.get(i) and len(bad[i]) < layout.num_segments]
    streams: dict[int, ArchiveStream] = {}

    async def add(indexes: list[int], enough: int) -> None:
        for i in indexes:
            if len(streams) >= enough:
                return
            stream = await _open(cluster, placement[i], archives[i], layout, 0)
            if stream is not None:
                streams[i] = stream

    try:
        await add(whole, k)
        if len(streams) < k:
            await add(damaged, len(placement))
    except BaseException:  # cancelled while opening (a shutdown): none left open
        for stream in streams.values():
            stream.close()
        raise
    return streams


async def _feed(queue: asyncio.Queue, item: bytes | None, upload: asyncio.Task,
                volume_id: str) -> None:
    """Put the next piece of a rebuilt archive in its upload's queue, unless the upload
    ends first: a target that failed (killed while it was being checked, say) stops
    reading its queue, and waiting on a full one would hang the heal for good."""
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait({put, upload}, return_when=asyncio.FIRST_COMPLETED)
    if put.done():
        return
    put.cancel()
    upload.result()  # its failure, if it failed
    raise VolumeUnavailable(volume_id, "the stage ended before its body")
