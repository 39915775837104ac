"""Read path: find the current version by the read rule, then stream decoded ranges.

The read rule (read_rule.py, docs/durability.md) serves the newest version proven
committed on the write quorum; if fewer than k of its fragments can be read, the answer
is 503 rather than an older version. For a range only the framed fragments of the
segments it touches are fetched, data fragments first, a parity fragment replacing any
that fails or fails its checksum.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from erasure import FragmentCorrupt, segment_span
from gateway.errors import key_busy, quorum_lost
from gateway.metrics import CHECKSUM_FAILURES
from gateway.objects import attributes
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import first_answers
from gateway.objects.read_rule import Undecided, decide
from gateway.objects.volume_client import ArchiveStream, VolumeRejected, VolumeUnavailable
from shardgate.manifest import ObjectManifest, PartManifest
from shardgate.versionid import observe_version_id

THREAD_THRESHOLD = 64 * 1024
log = logging.getLogger("shardgate.gateway.reader")


async def find_latest(cluster: Cluster, incarnation: str, key: str) -> ObjectManifest | None:
    """The current manifest by the read rule (None if absent or deleted); 503 if the
    volumes that answer cannot decide."""
    current = await find_current(cluster, incarnation, key)
    return None if current is None or current.deleted else current


async def find_current(cluster: Cluster, incarnation: str, key: str,
                       inline: dict[int, bytes] | None = None) -> ObjectManifest | None:
    """The key's newest proven version, a delete marker included (None: no version).

    Given an `inline` dict (a GET about to read the bytes), the first volumes asked are
    k, not just enough to decide, and each sends the fragment it keeps inline for its
    newest row: for a small object the fragments of the version decided on land in
    `inline` by index, and the read needs no second round trip.
    """
    if inline is None:
        return await decided(cluster, incarnation, key,
                             lambda vid: cluster.volumes.latest(vid, incarnation, key))
    current, _, answers = await _decided_with_answers(
        cluster, incarnation, key,
        lambda vid: cluster.volumes.latest(vid, incarnation, key, with_inline=True),
        first=cluster.codec.k)
    if current is not None and not current.deleted:
        inline.update(inline_fragments(current, answers))
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
                                first: int = 0
                                ) -> tuple[ObjectManifest | None, list[str], list[list[dict]]]:
    """The decision, the versions it skipped, and every answer it weighed; `first` asks
    that many volumes at once when more than the fewest that can decide."""
    placement = cluster.placement(incarnation, key)
    enough = max(cluster.width - cluster.write_quorum + 1, min(first, len(placement)))
    # Ask just enough volumes first (healthy ones, data-fragment holders first: the read
    # goes to them next); the others only if those cannot decide.
    order = sorted(placement, key=cluster.suspect)
    results = await first_answers({vid: fetch(vid) for vid in order[:enough]}, enough)
    try:
        decision = decide(answered_of(results), cluster.width, cluster.write_quorum)
    except Undecided:
        results |= await first_answers({vid: fetch(vid) for vid in order[enough:]},
                                       len(order) - enough)
        try:
            decision = decide(answered_of(results), cluster.width, cluster.write_quorum)
        except Undecided as exc:
            cluster.note_answers(results)
            if len(answered_of(results)) > cluster.width - cluster.write_quorum:
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
    return attributes.apply(ObjectManifest.from_dict(decision.current["manifest"]),
                            attributes.newest(held)), decision.skipped, answers


def answered_of(results: dict) -> list:
    return [r for r in results.values() if not isinstance(r, BaseException)]


class _PartReader:
    """Streams object bytes [start, end] (part-local, inclusive) of one part."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, part: PartManifest,
                 start: int, end: int, inline: dict[int, bytes] | None = None) -> None:
        self.cluster = cluster
        self.manifest = manifest
        self.part = part
        self.codec = cluster.codec_for(manifest.erasure)
        self.seeds = part.seeds(manifest.incarnation, manifest.key)
        self.k = self.codec.k
        self.layout = self.codec.layout(part.size)
        self._ready: bytes | None = None
        self.span = segment_span(self.layout, start, end)
        self.start, self.end = start, end
        # Data fragments first (no decoding work), volumes that just failed to answer last.
        self.untried = sorted((i for i, holder in enumerate(part.placement) if holder),
                              key=lambda i: (cluster.suspect(part.placement[i]), i))
        self.streams: dict[int, ArchiveStream] = {}
        # Whole archives that came with the version's rows (a small object kept inline):
        # their fragments are used before any stream is opened.
        self.inline = {i: data for i, data in (inline or {}).items()
                       if len(data) == self.layout.archive_size}

    async def _open(self, index: int, segment: int) -> None:
        volume_id = self.part.placement[index]
        assert volume_id is not None
        archive = self.part.archive_id(self.manifest.incarnation, self.manifest.key, index)
        with contextlib.suppress(VolumeUnavailable, VolumeRejected):
            self.streams[index] = await self.cluster.volumes.open_archive(
                volume_id, archive, self.layout.archive_offset(segment), self.span.archive_end)

    async def ensure(self, segment: int, bad: set[int], have: frozenset[int] = frozenset()
                     ) -> None:
        """Open streams (data indexes first) until k good fragments of `segment` can be
        had; `bad` are indexes whose fragment of this segment already failed, `have`
        those already in hand without a stream."""
        def usable() -> int:
            return len((set(self.streams) | have) - bad)

        while usable() < self.k and self.untried:
            wanted = self.k - usable()
            batch = [i for i in self.untried if i not in have][:wanted]
            self.untried = [i for i in self.untried if i not in batch and i not in have]
            await asyncio.gather(*(self._open(i, segment) for i in batch))
        if usable() < self.k:
            self.close()
            raise quorum_lost("Too few fragments of the object are readable.")

    def _inline_fragments(self, segment: int) -> dict[int, bytes]:
        start = self.layout.archive_offset(segment)
        end = start + self.layout.framed_length(segment)
        return {i: data[start:end] for i, data in self.inline.items()}

    def _drop(self, index: int) -> None:
        stream = self.streams.pop(index, None)
        if stream is not None:
            stream.close()

    async def _segment(self, segment: int) -> bytes:
        """Decode one segment from any k good fragments. A fragment that fails its
        checksum costs only this segment's copy: its stream stays open (it is positioned
        at the next segment) and one more index is opened to stand in for it here."""
        size = self.layout.framed_length(segment)
        fragments = self._inline_fragments(segment)
        from_inline = frozenset(fragments)
        bad: set[int] = set()
        while True:
            if len(fragments) < self.k:
                await self.ensure(segment, bad, from_inline)
                pending = [i for i in self.streams if i not in fragments and i not in bad]
                results = await asyncio.gather(*(self.streams[i].read_exactly(size)
                                                 for i in pending), return_exceptions=True)
                for index, result in zip(pending, results, strict=True):
                    if isinstance(result, BaseException):
                        self._drop(index)
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
                self._report(corrupt, segment)

    def _report(self, corrupt: FragmentCorrupt, segment: int) -> None:
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

    async def decode_first(self) -> None:
        """Decode the first segment now, so a failure is a 503 before any header is sent."""
        self._ready = await self._segment(self.span.first_segment)

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for segment in range(self.span.first_segment, self.span.last_segment + 1):
                if segment == self.span.first_segment and self._ready is not None:
                    data, self._ready = self._ready, None
                else:
                    data = await self._segment(segment)
                offset = self.layout.segment_offset(segment)
                lo = max(self.start, offset) - offset
                hi = min(self.end + 1, offset + len(data)) - offset
                yield data if (lo == 0 and hi == len(data)) else data[lo:hi]
        finally:
            self.close()

    def close(self) -> None:
        for index in list(self.streams):
            self._drop(index)


class ObjectReader:
    """Bytes [start, end] of an object across its parts; `prepare` fails fast with 503."""

    def __init__(self, cluster: Cluster, manifest: ObjectManifest, start: int, end: int,
                 inline: dict[int, bytes] | None = None) -> None:
        self.cluster = cluster
        self.manifest = manifest
        self.inline = inline
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
            self._first = _PartReader(self.cluster, self.manifest, part, lo, hi, self.inline)
            await self._first.decode_first()

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
