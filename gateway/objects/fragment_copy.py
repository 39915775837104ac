"""Moving a fragment archive by copying it: what a rebalance does instead of a rebuild.

When a key's placement changes, a fragment that changes volume keeps its index, so its
archive moves unchanged: the new volume gets the old one's bytes. Each segment is
checked against its CRC32C (and the index and seed its frame names) as it passes, so a
corrupt source is never copied; the caller then rebuilds from the other fragments
instead. A copy reads one fragment where a rebuild reads k of them and decodes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from erasure import ArchiveLayout, Codec, FragmentCorrupt
from gateway.objects.cluster import Cluster
from gateway.objects.stage_watch import watched_repair_stage
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable


class CopyFailed(Exception):
    """The source was unreadable or corrupt: rebuild instead."""


async def _verified(cluster: Cluster, codec: Codec, layout: ArchiveLayout, source: str,
                    archive: str, index: int, seed: int) -> AsyncIterator[bytes]:
    """The source archive's framed segments, each verified before it is passed on."""
    try:
        stream = await cluster.volumes.open_archive(source, archive, 0,
                                                    layout.archive_size - 1)
    except (VolumeUnavailable, VolumeRejected) as exc:
        raise CopyFailed(f"{archive} on {source}: {exc}") from exc
    try:
        for segment in range(layout.num_segments):
            framed = await stream.read_exactly(layout.framed_length(segment))
            codec.unframe(framed, index, seed)
            yield framed
    except (FragmentCorrupt, VolumeUnavailable) as exc:
        raise CopyFailed(f"{archive} on {source}: {exc!r}") from exc
    finally:
        stream.close()


async def copy_fragments(cluster: Cluster, codec: Codec, layout: ArchiveLayout,
                         sources: dict[int, str], placement: tuple[str, ...],
                         archives: list[str], seeds: dict[int, int],
                         inline: bool, bulk: bool = False) -> dict[int, str]:
    """Stage each index's archive from `sources[index]` on `placement[index]`; the stage
    ids (installed by a repair). Raises CopyFailed, with nothing left staged."""
    batch = uuid.uuid4().hex
    stage_ids = {i: f"{batch}.move.{i}" for i in sources}
    results = await asyncio.gather(*(
        watched_repair_stage(cluster, placement[i], stage_ids[i],
                             _verified(cluster, codec, layout, source, archives[i], i,
                                       seeds.get(i, 0)),
                             layout.archive_size, inline=inline,
                             around_cache=cluster.config.written_around_cache(i, bulk))
        for i, source in sources.items()), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await asyncio.gather(*(cluster.volumes.abort_stage(placement[i], sid)
                               for i, sid in stage_ids.items()), return_exceptions=True)
        raise CopyFailed(f"copy of {sorted(sources)} failed: {failed[0]!r}") from failed[0]
    return stage_ids
