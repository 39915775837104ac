"""Read-ahead: a ranged GET's first fragment reads ride on its `latest` requests.

A GET takes two round trips to the volumes: `latest` to the volumes the read rule asks,
then the fragment reads of the version it decided on. When this gateway process has
decided the key before, it knows that version and where its fragments are (a hint: the
manifest it last decided on, `ReadHints`). Each volume of the first round that holds a
data fragment the range needs is then asked in the same request for those fragment
bytes, which it streams after its rows if its own newest row is the hinted version.

The hint only saves a round trip; it never chooses what is served. The read rule still
decides the version from this GET's own answers, and the opened reads are used only
when that decision is the hinted version with the very same archives (an archive id
names one write, and each fragment's checksum is seeded by its archive id). Anything
else, and anything the reader does not take, is closed unread.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from erasure import Codec, RangeNotSatisfiable, SliceSpec, resolve_range
from gateway.objects.range_shape import RangeShape
from gateway.objects.shared_reads import PartKey
from gateway.objects.volume_transport import ArchiveStream
from shardgate.manifest import ObjectManifest, PartManifest

if TYPE_CHECKING:
    from gateway.objects.cluster import Cluster

HINTS = 4096  # keys remembered per gateway process
HINT_PARTS = 20_000  # and parts in all (a manifest of many parts weighs as many)
READ_AHEAD_SEGMENTS = 16  # longer ranges gain nothing measurable from one round trip


class ReadHints:
    """Per process: the manifest each recently read key was last decided to be (LRU,
    within `capacity` keys and `parts` parts)."""

    def __init__(self, capacity: int = HINTS, parts: int = HINT_PARTS) -> None:
        self.capacity = capacity
        self.parts = parts
        self._held_parts = 0
        self._manifests: OrderedDict[tuple[str, str], ObjectManifest] = OrderedDict()

    def remember(self, manifest: ObjectManifest) -> None:
        """Keep a decided version whose bytes live in archives (not inline, not a marker)."""
        where = (manifest.incarnation, manifest.key)
        self._forget(where)
        if manifest.deleted or len(manifest.parts) > self.parts or \
                any(part.inline for part in manifest.parts):
            return
        self._manifests[where] = manifest
        self._held_parts += len(manifest.parts)
        while len(self._manifests) > self.capacity or self._held_parts > self.parts:
            self._forget(next(iter(self._manifests)))

    def _forget(self, where: tuple[str, str]) -> None:
        dropped = self._manifests.pop(where, None)
        if dropped is not None:
            self._held_parts -= len(dropped.parts)

    def get(self, incarnation: str, key: str) -> ObjectManifest | None:
        return self._manifests.get((incarnation, key))


@dataclass(frozen=True)
class PlannedRead:
    index: int
    volume_id: str
    archive: str
    start: int
    end: int
    slices: SliceSpec | None = None


class ReadAhead:
    """The reads one GET asks for with its `latest` requests, and the streams opened."""

    def __init__(self, hint: ObjectManifest, part: PartManifest,
                 reads: list[PlannedRead]) -> None:
        self.hint = hint
        self.part = part
        self.by_volume = {read.volume_id: read for read in reads}
        self._streams: dict[int, tuple[PlannedRead, ArchiveStream]] = {}
        self._confirmed = False
        self._closed = False
        self._release: Callable[[], None] | None = None  # a claim on shared segments

    @staticmethod
    def healthy_data(cluster: Cluster, codec: Codec, part: PartManifest) -> bool:
        """Whether a part's data fragments can be read directly (no decode): a systematic
        code, archives (not inline), and every data holder known and not suspect."""
        holders = part.placement[:codec.k]
        return (codec.systematic and not part.inline
                and all(h is not None and not cluster.suspect(h) for h in holders))

    @classmethod
    def plan(cls, cluster: Cluster, incarnation: str, key: str, range_header: str
             ) -> ReadAhead | None:
        """The reads a GET of `range_header` would open first, if this process has a
        hint for the key and the range's first part is read from healthy data holders."""
        hint = cluster.read_hints.get(incarnation, key)
        if hint is None:
            return None
        try:
            wanted = resolve_range(range_header, hint.size)
        except (RangeNotSatisfiable, ValueError):
            return None
        if wanted is None:
            return None
        start, end = wanted
        offset = 0
        for part in hint.parts:
            if part.size and start < offset + part.size:
                break
            offset += part.size
        else:
            return None
        codec = cluster.codec_for(hint.erasure)
        if not cls.healthy_data(cluster, codec, part):
            return None
        shape = RangeShape(codec.layout(part.size), start - offset,
                           min(end, offset + part.size - 1) - offset)
        shared: tuple[PartKey, int] | None = None
        seeds = part.seeds(incarnation, key)
        if shape.narrow and seeds is not None:  # narrow reads are a GET's own, never shared
            spans = shape.narrow_slices(codec, seeds)
        elif shape.narrow:
            spans = {i: (first, last, None) for i, (first, last)
                     in shape.narrow_reads(codec).items()}
        elif shape.whole(shape.span.first_segment) and \
                len(shape.segments) <= READ_AHEAD_SEGMENTS:
            shared = ((incarnation, key, hint.version_id, part.number),
                      shape.span.first_segment)
            first = shape.span.archive_start
            spans = {index: (first, shape.whole_end(), None) for index in range(codec.k)}
        else:
            return None
        reads = [PlannedRead(index, volume_id, part.archive_id(incarnation, key, index),
                             first, last, slices)
                 for index, (first, last, slices) in spans.items()
                 if (volume_id := part.placement[index]) is not None]
        if len({read.volume_id for read in reads}) != len(reads):
            return None  # a volume holding two of them: not worth the bookkeeping
        if shared is not None and not cluster.segments.claim_ahead(*shared):
            return None  # another GET here reads those segments: share theirs
        ahead = cls(hint, part, reads)
        if shared is not None:
            ahead._release = lambda: cluster.segments.release_ahead(*shared)
        return ahead

    async def latest(self, cluster: Cluster, volume_id: str, with_inline: bool
                     ) -> list[dict]:
        """`latest` from `volume_id`, opening its planned read along."""
        read = self.by_volume[volume_id]
        hint = self.hint
        rows, stream = await cluster.volumes.latest_and_read(
            volume_id, hint.incarnation, hint.key, hint.version_id, read.archive,
            read.start, read.end, with_inline, read.slices)
        if stream is not None:
            if self._closed:  # the GET ended while this answer was on its way
                stream.close()
            else:
                self._streams[read.index] = (read, stream)
        return rows

    def confirm(self, current: ObjectManifest | None) -> None:
        """The read rule's decision: the streams stay only if it is the hinted version
        with the same archives for the part read."""
        part = self.part
        self._confirmed = (
            current is not None and not current.deleted
            and current.version_id == self.hint.version_id
            and any(p.number == part.number and p.archive_tag == part.archive_tag
                    and p.size == part.size for p in current.parts))
        if not self._confirmed:
            self.close()

    def take(self, index: int, start: int, end: int,
             slices: SliceSpec | None = None) -> ArchiveStream | None:
        """The opened read of fragment `index` over archive bytes [start, end] (and its
        `slices`), if there is exactly that one (the caller owns it from here)."""
        if not self._confirmed:
            return None
        found = self._streams.get(index)
        if found is None or (found[0].start, found[0].end, found[0].slices) != (
                start, end, slices):
            return None
        del self._streams[index]
        return found[1]

    def take_from(self, start: int, end: int, indexes: range) -> dict[int, ArchiveStream]:
        """Every opened read over [start, end] among `indexes` (a cursor's streams)."""
        taken = {i: self.take(i, start, end) for i in indexes}
        return {i: stream for i, stream in taken.items() if stream is not None}

    def close(self) -> None:
        """Close every read nobody took (and any that is still to arrive)."""
        self._closed = True
        if self._release is not None:
            self._release()
            self._release = None
        for _, stream in self._streams.values():
            with contextlib.suppress(Exception):
                stream.close()
        self._streams.clear()
