"""Shared segment reads: concurrent GETs of one object version fetch each segment once.

A version id names one write, so the decoded bytes of its segments never change: a
segment one GET decoded can serve every other GET of the same version in this process.
Which version a GET reads is still decided by that GET alone (the read rule, over the
volumes' `latest` answers, every time): sharing changes how a version's bytes are
fetched, never which version is served, so no GET can see a stale one.

Per process, a `SegmentExchange` holds the parts being read now (`PartSource`, one per
version and part, counted by the GETs using it), their in-flight segment fetches (one
task per segment, awaited by every GET that wants it) and the most recently decoded
segments within a byte budget. A part's fragment streams belong to its source, not to a
GET: a `Cursor` is k open archive reads positioned at one segment, handed from fetch to
fetch, so a hundred GETs of one object in step read its fragments about once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from erasure import FragmentCorrupt
from gateway.errors import quorum_lost
from gateway.metrics import CHECKSUM_FAILURES
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from gateway.objects.volume_transport import ArchiveStream
from shardgate.manifest import ObjectManifest, PartManifest

if TYPE_CHECKING:
    from gateway.objects.cluster import Cluster

THREAD_THRESHOLD = 64 * 1024  # decode segments at least this large off the event loop
log = logging.getLogger("shardgate.gateway.reader")

PartKey = tuple[str, str, str, int]  # incarnation, key, version id, part number


@dataclass
class Cursor:
    """Open fragment reads of one part, positioned at `position`, opened up to `end`
    (inclusive, archive bytes); `untried` are the indexes not opened yet, best first."""

    position: int
    end: int
    untried: list[int]
    streams: dict[int, ArchiveStream] = field(default_factory=dict)

    def drop(self, index: int) -> None:
        stream = self.streams.pop(index, None)
        if stream is not None:
            stream.close()

    def close(self) -> None:
        for index in list(self.streams):
            self.drop(index)


class PartSource:
    """Fetches and decodes the segments of one part of one version, for every GET of it."""

    def __init__(self, exchange: SegmentExchange, manifest: ObjectManifest,
                 part: PartManifest) -> None:
        cluster = exchange.cluster
        self.exchange = exchange
        self.cluster = cluster
        self.manifest = manifest
        self.part = part
        self.key: PartKey = (manifest.incarnation, manifest.key, manifest.version_id,
                             part.number)
        self.codec = cluster.codec_for(manifest.erasure)
        self.k = self.codec.k
        self.layout = self.codec.layout(part.size)
        self.seeds = part.seeds(manifest.incarnation, manifest.key)
        self.users = 0
        self.closed = False
        self.inline: dict[int, bytes] = {}
        self.remembered: set[int] = set()
        self._idle: list[Cursor] = []
        self._fetching: dict[int, asyncio.Task[bytes]] = {}

    def add_inline(self, inline: dict[int, bytes] | None) -> None:
        """Whole archives that came with the version's rows (a small object kept inline):
        their fragments are used before any stream is opened."""
        for index, data in (inline or {}).items():
            if len(data) == self.layout.archive_size:
                self.inline.setdefault(index, data)

    async def segment(self, segment: int, end: int) -> bytes:
        """Decoded `segment`, fetched once however many GETs want it; `end` is the last
        archive byte the asking GET will want (a stream opened for it goes no further)."""
        cached = self.exchange.recent(self.key, segment)
        if cached is not None:
            return cached
        task = self._fetching.get(segment)
        if task is None:
            task = self._start(segment, end)
        # Shielded: a GET whose client goes away must not cancel the others' fetch.
        return await asyncio.shield(task)

    async def cut(self, segment: int, lo: int, hi: int) -> bytes | None:
        """Bytes [lo, hi) of `segment` (segment-local) from just the data fragments that
        hold them, each checked, or None when that is not fewer than k fragments or they
        cannot all be had intact now (the caller then reads the segment whole, which
        falls back to parity). A range's edges cost only the fragments they touch."""
        if not self.codec.systematic:
            return None
        cached = self.exchange.recent(self.key, segment)
        if cached is not None:
            return cached[lo:hi]
        length = self.layout.segment_length(segment)
        wanted = self.codec.data_indexes(length, lo, hi)
        holders = [self.part.placement[i] for i in wanted]
        if len(wanted) >= self.k or any(h is None or self.cluster.suspect(h) for h in holders):
            return None
        fragments = {i: f for i, f in self._inline_fragments(segment).items() if i in wanted}
        fetched = await asyncio.gather(*(self._one_fragment(i, segment) for i in wanted
                                         if i not in fragments), return_exceptions=True)
        for result in fetched:
            if isinstance(result, BaseException):
                if isinstance(result, VolumeUnavailable | VolumeRejected):
                    return None
                raise result
            fragments[result[0]] = result[1]
        try:
            return self.codec.join_data(fragments, length, lo, hi, self.seeds)
        except FragmentCorrupt as corrupt:
            self.report(corrupt, segment)
            return None

    async def _one_fragment(self, index: int, segment: int) -> tuple[int, bytes]:
        volume_id = self.part.placement[index]
        assert volume_id is not None
        archive = self.part.archive_id(self.manifest.incarnation, self.manifest.key, index)
        start = self.layout.archive_offset(segment)
        size = self.layout.framed_length(segment)
        stream = await self.cluster.volumes.open_archive(volume_id, archive, start,
                                                         start + size - 1)
        try:
            return index, await stream.read_exactly(size)
        finally:
            stream.close()

    def _start(self, segment: int, end: int) -> asyncio.Task[bytes]:
        task = asyncio.create_task(self._fetch(segment, end))
        self._fetching[segment] = task
        task.add_done_callback(lambda done: self._finished(segment, done))
        return task

    def _finished(self, segment: int, task: asyncio.Task[bytes]) -> None:
        self._fetching.pop(segment, None)
        if task.cancelled() or task.exception() is not None:
            return  # (retrieved: every waiter got it, or none was left)
        if self.users > 1 and not self.closed:  # someone else may want it yet
            self.exchange.remember(self, segment, task.result())

    def _cursor_at(self, segment: int, end: int) -> Cursor:
        """An idle cursor positioned at `segment`, or a new one opened up to `end`."""
        for cursor in self._idle:
            if cursor.position == segment:
                self._idle.remove(cursor)
                return cursor
        return Cursor(segment, end, self._holder_order())

    def adopt(self, segment: int, end: int, streams: dict[int, ArchiveStream]) -> None:
        """Reads a GET opened ahead (read_ahead.py), positioned at `segment` and reaching
        `end`: an idle cursor for the fetch of `segment`, unless that segment is already
        decoded or being fetched, or another idle cursor stands there (then they are
        closed: nothing would read them)."""
        if not streams:
            return
        cursor = Cursor(segment, end, [], dict(streams))
        if self.closed or self.busy_at(segment):
            cursor.close()
            return
        cursor.untried = [i for i in self._holder_order() if i not in streams]
        self._idle.append(cursor)
        self._trim_idle()

    def busy_at(self, segment: int) -> bool:
        """Whether `segment` is being fetched, kept decoded, or has a cursor waiting."""
        return (segment in self._fetching
                or self.exchange.recent(self.key, segment) is not None
                or any(cursor.position == segment for cursor in self._idle))

    def _holder_order(self) -> list[int]:
        """Fragment indexes with a holder, healthy ones first, data before parity."""
        return sorted((i for i, holder in enumerate(self.part.placement) if holder),
                      key=lambda i: (self.cluster.suspect(self.part.placement[i]), i))

    def _park(self, cursor: Cursor) -> None:
        """Keep a cursor for the next fetch of the segment it now stands at, while its
        streams reach that far. Each GET of the part comes back for at most one, so past
        as many idle cursors as GETs the oldest (left by a GET that went away) is closed:
        fewer would close cursors their GETs still stream from, and re-reading what
        the volumes already sent them."""
        if (self.closed or cursor.position >= self.layout.num_segments
                or self._segment_end(cursor.position) > cursor.end or not cursor.streams):
            cursor.close()
            return
        self._idle.append(cursor)
        self._trim_idle()

    def _trim_idle(self) -> None:
        while len(self._idle) > max(self.users, 1):
            self._idle.pop(0).close()

    def _segment_end(self, segment: int) -> int:
        return self.layout.archive_offset(segment) + self.layout.framed_length(segment) - 1

    async def _fetch(self, segment: int, end: int) -> bytes:
        if self.closed:
            raise quorum_lost("The read was abandoned.")
        cursor = self._cursor_at(segment, max(end, self._segment_end(segment)))
        try:
            data = await self._decode(cursor, segment)
        except BaseException:
            cursor.close()
            raise
        cursor.position = segment + 1
        self._park(cursor)
        return data

    async def _open(self, cursor: Cursor, index: int) -> None:
        volume_id = self.part.placement[index]
        assert volume_id is not None
        archive = self.part.archive_id(self.manifest.incarnation, self.manifest.key, index)
        with contextlib.suppress(VolumeUnavailable, VolumeRejected):
            cursor.streams[index] = await self.cluster.volumes.open_archive(
                volume_id, archive, self.layout.archive_offset(cursor.position), cursor.end)

    async def _ensure(self, cursor: Cursor, bad: set[int], have: frozenset[int]) -> None:
        """Open streams (data indexes first) until k good fragments of the cursor's
        segment can be had; `bad` already failed there, `have` are in hand already."""
        def usable() -> int:
            return len((set(cursor.streams) | have) - bad)

        while usable() < self.k and cursor.untried:
            batch = [i for i in cursor.untried if i not in have][:self.k - usable()]
            cursor.untried = [i for i in cursor.untried if i not in batch and i not in have]
            await asyncio.gather(*(self._open(cursor, i) for i in batch))
        if usable() < self.k:
            raise quorum_lost("Too few fragments of the object are readable.")

    def _inline_fragments(self, segment: int) -> dict[int, bytes]:
        start = self.layout.archive_offset(segment)
        end = start + self.layout.framed_length(segment)
        return {i: data[start:end] for i, data in self.inline.items()}

    async def _decode(self, cursor: Cursor, segment: int) -> bytes:
        """Decode one segment from any k good fragments. A fragment that fails its
        checksum costs only this segment's copy: its stream stays open (it is positioned
        at the next segment) and one more index is opened to stand in for it here."""
        size = self.layout.framed_length(segment)
        fragments = self._inline_fragments(segment)
        from_inline = frozenset(fragments)
        bad: set[int] = set()
        while True:
            if len(fragments) < self.k:
                await self._ensure(cursor, bad, from_inline)
                pending = [i for i in cursor.streams if i not in fragments and i not in bad]
                results = await asyncio.gather(*(cursor.streams[i].read_exactly(size)
                                                 for i in pending), return_exceptions=True)
                for index, result in zip(pending, results, strict=True):
                    if isinstance(result, BaseException):
                        cursor.drop(index)
                    else:
                        fragments[index] = result
                if len(fragments) < self.k:
                    continue
            try:
                if size >= THREAD_THRESHOLD:
                    return await asyncio.to_thread(self.codec.decode_segment, fragments,
                                                   self.seeds)
                return self.codec.decode_segment(fragments, self.seeds)
            except FragmentCorrupt as corrupt:
                fragments.pop(corrupt.index, None)
                bad.add(corrupt.index)
                self.report(corrupt, segment)

    def report(self, corrupt: FragmentCorrupt, segment: int) -> None:
        """Log a checksum failure and queue its fragment for healing on its volume."""
        volume_id = self.part.placement[corrupt.index]
        archive = self.part.archive_id(self.manifest.incarnation, self.manifest.key,
                                       corrupt.index)
        log.warning("corrupt fragment: volume %s, object %s/%s version %s, part %d, "
                    "segment %d, index %d: %s", volume_id, self.manifest.bucket,
                    self.manifest.key, self.manifest.version_id, self.part.number, segment,
                    corrupt.index, corrupt.reason)
        CHECKSUM_FAILURES.inc()
        if volume_id is not None:
            self.cluster.report_corrupt(volume_id, self.manifest, archive, corrupt.index,
                                        f"checksum failure in segment {segment}")

    def close(self) -> None:
        """The last GET of this part is done: close every stream (a fetch still running
        finds them closed and ends)."""
        self.closed = True
        for cursor in self._idle:
            cursor.close()
        self._idle.clear()


class SegmentExchange:
    """Per process: the parts being read, and recently decoded segments within `budget`
    bytes (GETs a little behind the others take them from here)."""

    def __init__(self, cluster: Cluster, budget: int) -> None:
        self.cluster = cluster
        self.budget = budget
        self._sources: dict[PartKey, PartSource] = {}
        self._ahead: set[tuple[PartKey, int]] = set()
        self._recent: OrderedDict[tuple[PartKey, int], bytes] = OrderedDict()
        self._recent_bytes = 0

    def acquire(self, manifest: ObjectManifest, part: PartManifest,
                inline: dict[int, bytes] | None = None) -> PartSource:
        """The shared source of this part of this version; pair with `release`. A part
        kept inline gets a source of its own: its fragments come with each GET's own
        `latest` answers, so there is nothing to share, and a GET that has them all
        must not wait on one that lacks some."""
        key = (manifest.incarnation, manifest.key, manifest.version_id, part.number)
        if part.inline:
            source = PartSource(self, manifest, part)
            source.users = 1
            source.add_inline(inline)
            return source
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = PartSource(self, manifest, part)
        source.users += 1
        source.add_inline(inline)
        return source

    def claim_ahead(self, key: PartKey, segment: int) -> bool:
        """Whether a GET may open reads of `segment` of a part ahead of its decision
        (read_ahead.py): not while another GET here is about to read that segment,
        reads it, or keeps it, since it would then take it from them and the reads
        opened ahead would be thrown away. Pair a True with `release_ahead`."""
        source = self._sources.get(key)
        if (key, segment) in self._ahead or (source is not None and source.busy_at(segment)):
            return False
        self._ahead.add((key, segment))
        return True

    def release_ahead(self, key: PartKey, segment: int) -> None:
        self._ahead.discard((key, segment))

    def release(self, source: PartSource) -> None:
        source.users -= 1
        if source.users == 0:
            source.close()
            self._forget(source)
            if self._sources.get(source.key) is source:
                del self._sources[source.key]

    def recent(self, key: PartKey, segment: int) -> bytes | None:
        data = self._recent.get((key, segment))
        if data is not None:
            self._recent.move_to_end((key, segment))
        return data

    def remember(self, source: PartSource, segment: int, data: bytes) -> None:
        """Keep a decoded segment while other GETs of its part run (never longer: a GET
        that starts when none is running reads the fragments as they are now)."""
        if len(data) > self.budget or (source.key, segment) in self._recent:
            return
        self._recent[(source.key, segment)] = data
        source.remembered.add(segment)
        self._recent_bytes += len(data)
        while self._recent_bytes > self.budget:
            (key, dropped_segment), dropped = self._recent.popitem(last=False)
            self._recent_bytes -= len(dropped)
            owner = self._sources.get(key)
            if owner is not None:
                owner.remembered.discard(dropped_segment)

    def _forget(self, source: PartSource) -> None:
        for segment in source.remembered:
            data = self._recent.pop((source.key, segment), None)
            if data is not None:
                self._recent_bytes -= len(data)
        source.remembered.clear()
