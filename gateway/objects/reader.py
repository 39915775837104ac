"""Read path: find the current version by the read rule, then stream decoded ranges.

The read rule (read_rule.py, docs/durability.md) serves the newest version proven
committed on the write quorum; if fewer than k of its fragments can be read, the answer
is 503 rather than an older version. For a range only the framed fragments of the
segments it touches are fetched, data fragments first, a parity fragment replacing any
that fails or fails its checksum.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gateway.errors import key_busy, quorum_lost
from gateway.objects import attributes
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import first_answers
from gateway.objects.narrow_reads import NarrowRange
from gateway.objects.range_shape import RangeShape
from gateway.objects.read_ahead import ReadAhead
from gateway.objects.read_rule import Decision, Undecided, decide_placements
from shardgate.manifest import ObjectManifest, PartManifest, named_holders
from shardgate.versionid import observe_version_id

# A decoded segment goes out in pieces: a slow client's transport buffers at most one
# piece beyond what its socket holds, instead of a whole segment (100 readers of a hot
# object were 100 segments in send buffers).
SEND_PIECE = 256 * 1024

log = logging.getLogger("shardgate.gateway.reader")


async def find_latest(cluster: Cluster, incarnation: str, key: str) -> ObjectManifest | None:
    """The current manifest by the read rule (None if absent or deleted); 503 if the
    volumes that answer cannot decide."""
    current = await find_current(cluster, incarnation, key)
    return None if current is None or current.deleted else current


async def find_current(cluster: Cluster, incarnation: str, key: str,
                       inline: dict[int, bytes] | None = None,
                       ahead: ReadAhead | None = None) -> ObjectManifest | None:
    """The key's newest proven version, a delete marker included (None: no version).

    Given an `inline` dict (a GET about to read the bytes), the first volumes asked are
    k, not just enough to decide, and each sends the fragment it keeps inline for its
    newest row: for a small object the fragments of the version decided on land in
    `inline` by index, and the read needs no second round trip. Given `ahead` (a ranged
    GET of a key this process has read before), the volumes it names are asked too,
    each opening its fragment read along (read_ahead.py). The decision is remembered
    as the key's next hint.
    """
    if inline is None:
        current = await decided(cluster, incarnation, key,
                                lambda vid: cluster.volumes.latest(vid, incarnation, key))
    else:
        def fetch(vid: str) -> Awaitable[list[dict]]:
            if ahead is not None and vid in ahead.by_volume:
                return ahead.latest(cluster, vid, with_inline=True)
            return cluster.volumes.latest(vid, incarnation, key, with_inline=True)

        current, _, answers = await _decided_with_answers(
            cluster, incarnation, key, fetch, first=cluster.codec.k,
            prefer=list(ahead.by_volume) if ahead else ())
        if current is not None and not current.deleted:
            inline.update(inline_fragments(current, answers))
    if ahead is not None:
        ahead.confirm(current)
    if current is not None:
        cluster.read_hints.remember(current)
    return current


def inline_fragments(manifest: ObjectManifest, answers: list[list[dict]]) -> dict[int, bytes]:
    """The fragments of `manifest`'s one inline part that the answers carried, by index
    (only from rows of that very version: the archive ids name it)."""
    if len(manifest.parts) != 1 or not manifest.parts[0].inline:
        return {}
    part = manifest.parts[0]
    index_of = {part.archive_id(manifest.incarnation, manifest.key, i): i
                for i, holder in enumerate(part.placement) if holder is not None}
    found: dict[int, bytes] = {}
    for rows in answers:
        for row in rows:
            if row["version_id"] != manifest.version_id:
                continue
            for archive, data in row.get("inline", {}).items():
                if archive in index_of:
                    found[index_of[archive]] = data
    return found


async def current_evidence(cluster: Cluster, incarnation: str, key: str
                           ) -> tuple[ObjectManifest | None, list[str]]:
    """`find_current`, and the newer versions the read rule proved never acknowledged
    (a conditional write's fence ignores them)."""
    return await _decided(cluster, incarnation, key,
                          lambda vid: cluster.volumes.latest(vid, incarnation, key))


async def decided(cluster: Cluster, incarnation: str, key: str,
                  fetch: Callable[[str], Awaitable[list[dict]]]) -> ObjectManifest | None:
    """Apply the read rule to what `fetch(volume_id)` answers over the key's placement,
    with the newest in-place attributes; 503 if the answers cannot decide."""
    return (await _decided(cluster, incarnation, key, fetch))[0]


async def _decided(cluster: Cluster, incarnation: str, key: str,
                   fetch: Callable[[str], Awaitable[list[dict]]]
                   ) -> tuple[ObjectManifest | None, list[str]]:
    current, skipped, _ = await _decided_with_answers(cluster, incarnation, key, fetch)
    return current, skipped


async def _decided_with_answers(cluster: Cluster, incarnation: str, key: str,
                                fetch: Callable[[str], Awaitable[list[dict]]],
                                first: int = 0, prefer: Sequence[str] = ()
                                ) -> tuple[ObjectManifest | None, list[str], list[list[dict]]]:
    """The decision, the versions it skipped, and every answer it weighed; `first` asks
    that many volumes at once when more than the fewest that can decide, `prefer` asks
    those of them in the placement in the first batch in any case."""
    placements = cluster.placements(incarnation, key)
    width = cluster.width
    enough = max(width - cluster.write_quorum + 1, min(first, width))
    # Ask just enough volumes of each placement first (healthy ones, data-fragment
    # holders first: the read goes to them next); the others only if those cannot decide.
    batch = [vid for vid in prefer if any(vid in placement for placement in placements)]
    for placement in placements:
        for vid in sorted(placement, key=cluster.suspect)[:enough]:
            if vid not in batch:
                batch.append(vid)
    rest = list(dict.fromkeys(vid for placement in placements for vid in placement
                              if vid not in batch))
    results = await first_answers({vid: fetch(vid) for vid in batch}, len(batch))
    try:
        decision = _decide(results, placements, cluster)
    except Undecided:
        results |= await first_answers({vid: fetch(vid) for vid in rest}, len(rest))
        try:
            decision = _decide(results, placements, cluster)
        except Undecided as exc:
            cluster.note_answers(results)
            if all(len(answered_of({v: results[v] for v in p if v in results}))
                   > width - cluster.write_quorum for p in placements):
                raise key_busy() from exc  # enough answered: a write is in flight
            raise quorum_lost("Too few storage volumes answered.") from exc
    cluster.note_answers(results)
    newest = max((row["version_id"] for rows in answered_of(results) for row in rows),
                 default="")
    if newest:
        observe_version_id(newest)
    if decision.skipped:
        log.info("%s/%s: versions %s never reached the write quorum", incarnation, key,
                 decision.skipped)
    answers = answered_of(results)
    if decision.current is None:
        return None, decision.skipped, answers
    current = decision.current["version_id"]
    held = [row for rows in answers for row in rows if row["version_id"] == current]
    copies = [row["manifest"] for row in held]  # the decided row's own copy first
    return attributes.apply(ObjectManifest.from_dict(named_holders(copies)),
                            attributes.newest(held)), decision.skipped, answers


def _decide(results: dict, placements: list[tuple[str, ...]], cluster: Cluster) -> Decision:
    """The read rule over each placement's answers (one placement but during a move)."""
    return decide_placements(
        [[results[v] for v in p if v in results and not isinstance(results[v], BaseException)]
         for p in placements], cluster.width, cluster.write_quorum)


def answered_of(results: dict) -> list:
    return [r for r in results.values() if not isinstance(r, BaseException)]


class _PartReader:
    """Streams object bytes [start, end] (part-local, inclusive) of one part, its
    segments fetched through the process's shared source of that part; the reads its
    GET's read-ahead opened (if any) are used first."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, part: PartManifest,
                 start: int, end: int, inline: dict[int, bytes] | None = None,
                 ahead: ReadAhead | None = None) -> None:
        self.exchange = cluster.segments
        self.source = self.exchange.acquire(manifest, part, inline)
        self.layout = self.source.layout
        self.shape = RangeShape(self.layout, start, end)
        self.span = self.shape.span
        self.ahead = ahead
        self._ready: bytes | None = None
        self._released = False
        self._narrow: NarrowRange | None = None
        self._narrow_tried = False

    async def _narrow_read(self, segment: int) -> bytes | None:
        """The wanted bytes of `segment` from the range's narrow reads (a short range
        with a partial edge: narrow_reads.py), or None once they are not to be had."""
        if not self._narrow_tried:
            self._narrow_tried = True
            if NarrowRange.usable(self.source, self.shape):
                narrow = NarrowRange(self.source, self.shape, self.ahead)
                if await narrow.open():
                    self._narrow = narrow
        if self._narrow is None:
            return None
        data = await self._narrow.segment(segment)
        if data is None:
            self._narrow = None
        return data

    async def _read(self, segment: int) -> bytes:
        """The wanted bytes of `segment`: from the narrow reads of a short range, else cut
        from its data fragments at an edge, else the segment decoded whole (shared with
        other GETs of the part), then trimmed. Each falls back to the next."""
        data = await self._narrow_read(segment)
        if data is not None:
            return data
        lo, hi = self.shape.wanted(segment)
        if not self.shape.whole(segment):
            cut = await self.source.cut(segment, lo, hi)
            if cut is not None:
                return cut
        whole_end = self.shape.whole_end()
        if self.ahead is not None and segment == self.span.first_segment:
            self.source.adopt(segment, whole_end, self.ahead.take_from(
                self.span.archive_start, whole_end, range(self.source.k)))
        data = await self.source.segment(segment, whole_end)
        return data if (lo == 0 and hi == len(data)) else data[lo:hi]

    async def decode_first(self) -> None:
        """Read the first segment now, so a failure is a 503 before any header is sent."""
        self._ready = await self._read(self.span.first_segment)

    def whole(self) -> bytes | None:
        """The read's bytes, if `decode_first` already holds all of them and they fit in
        one send piece; taken, so the stream is not to be used after."""
        if (self._ready is None or self.span.first_segment != self.span.last_segment
                or len(self._ready) > SEND_PIECE):
            return None
        data, self._ready = self._ready, None
        return data

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for segment in range(self.span.first_segment, self.span.last_segment + 1):
                if segment == self.span.first_segment and self._ready is not None:
                    data, self._ready = self._ready, None
                else:
                    data = await self._read(segment)
                if len(data) <= SEND_PIECE:
                    yield data
                    continue
                for offset in range(0, len(data), SEND_PIECE):
                    yield data[offset:offset + SEND_PIECE]
        finally:
            self.close()

    def close(self) -> None:
        if self._narrow is not None:
            self._narrow.close()
            self._narrow = None
        if not self._released:
            self._released = True
            self.exchange.release(self.source)


class ObjectReader:
    """Bytes [start, end] of an object across its parts; `prepare` fails fast with 503."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, start: int, end: int,
                 inline: dict[int, bytes] | None = None,
                 ahead: ReadAhead | None = None) -> None:
        self.cluster = cluster
        self.manifest = manifest
        self.inline = inline
        self.ahead = ahead
        self.pieces: list[tuple[PartManifest, int, int]] = []
        offset = 0
        for part in manifest.parts:
            lo, hi = max(start, offset), min(end, offset + part.size - 1)
            if part.size and lo <= hi:
                self.pieces.append((part, lo - offset, hi - offset))
            offset += part.size
        self._first: _PartReader | None = None

    async def prepare(self) -> None:
        if self.pieces:
            part, lo, hi = self.pieces[0]
            self._first = _PartReader(self.cluster, self.manifest, part, lo, hi, self.inline,
                                      self.ahead)
            await self._first.decode_first()

    def body_in_hand(self) -> bytes | None:
        """The whole body, when `prepare` has already decoded it and it fits in one send
        piece (a small object, a short range): it can go out as one message."""
        if len(self.pieces) == 1 and self._first is not None:
            return self._first.whole()
        return None

    def close(self) -> None:
        """Release the archive reads `prepare` opened (also when the body never started)."""
        if self._first:
            self._first.close()

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for n, (part, lo, hi) in enumerate(self.pieces):
                reader = self._first if n == 0 and self._first else _PartReader(
                    self.cluster, self.manifest, part, lo, hi)
                async for chunk in reader.stream():
                    yield chunk
        finally:
            if self._first:
                self._first.close()
