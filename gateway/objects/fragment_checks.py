"""Checking a part's fragment archives where they lie, for the healer: which segments of
each fragment index are missing or fail their checksum.

A seeded part's fragments are checked by their own volumes: a sliced read of empty
slices (erasure/slices.py) has the volume read each fragment and check its stored CRC,
and sends 8 bytes per fragment instead of the fragment. A part written before seeding,
and whatever a volume could not check that way, is read here and checked fragment by
fragment (CRC and the index in its header).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from erasure import (
    SLICE_OVERHEAD,
    ArchiveLayout,
    Codec,
    FragmentCorrupt,
    SliceSpec,
    check_slice,
)
from erasure.slices import MAX_FRAMES
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable

if TYPE_CHECKING:
    from gateway.objects.volume_client import VolumeClient


async def verify_fragments(volumes: VolumeClient, codec: Codec, layout: ArchiveLayout,
                           placement: tuple[str, ...], archives: list[str],
                           down: list[str], seeds: dict[int, int]) -> dict[int, set[int]]:
    """For each index, the segments whose fragment is missing or fails its checksum
    (all of them on a volume that is down)."""
    bad: dict[int, set[int]] = {}

    async def check(index: int) -> None:
        if placement[index] in down:
            bad[index] = set(range(layout.num_segments))
            return
        bad[index] = set()
        start = 0
        if index in seeds:
            start = await _on_volume(volumes, layout, placement[index], archives[index],
                                     index, seeds[index], bad[index])
        if start < layout.num_segments:
            await _here(volumes, codec, layout, placement[index], archives[index], index,
                        seeds.get(index, 0), start, bad[index])

    await asyncio.gather(*(check(i) for i in range(len(placement))))
    return bad


async def _on_volume(volumes: VolumeClient, layout: ArchiveLayout, volume_id: str,
                     archive: str, index: int, seed: int, bad: set[int]) -> int:
    """Have the volume check each fragment of a seeded archive; adds the bad segments to
    `bad` and returns the first segment not checked (the volume failed, or cannot do
    sliced reads: the rest is read here)."""
    for first in range(0, layout.num_segments, MAX_FRAMES):
        group = range(first, min(first + MAX_FRAMES, layout.num_segments))
        spec = SliceSpec(seed, tuple((layout.framed_length(s), 0, 0) for s in group))
        start = layout.archive_offset(first)
        try:
            stream = await volumes.open_archive(volume_id, archive, start,
                                                start + spec.span - 1, spec)
        except (VolumeUnavailable, VolumeRejected):
            return first
        try:
            for segment in group:
                try:
                    check_slice(await stream.read_exactly(SLICE_OVERHEAD), index)
                except FragmentCorrupt:
                    bad.add(segment)
                except VolumeUnavailable:
                    return segment
        finally:
            stream.close()
    return layout.num_segments


async def _here(volumes: VolumeClient, codec: Codec, layout: ArchiveLayout, volume_id: str,
                archive: str, index: int, seed: int, first: int, bad: set[int]) -> None:
    """Read fragments `first`.. of an archive and check each here; adds the bad
    segments, and all from where the volume failed, to `bad`."""
    segments = range(first, layout.num_segments)
    try:
        stream = await volumes.open_archive(volume_id, archive, layout.archive_offset(first),
                                            layout.archive_size - 1)
    except (VolumeUnavailable, VolumeRejected):
        bad.update(segments)
        return
    try:
        for segment in segments:
            try:
                framed = await stream.read_exactly(layout.framed_length(segment))
                codec.unframe(framed, index, seed)
            except FragmentCorrupt:
                bad.add(segment)
            except VolumeUnavailable:
                bad.update(s for s in segments if s >= segment)
                return
    finally:
        stream.close()
