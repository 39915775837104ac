"""A volume's scrubber: every fragment it holds is re-read and verified, at a bounded rate.

Reads verify fragments too, but only of what is read; cold data can rot unseen until
the day it is needed, when other copies may have rotted as well. The scrubber walks the
object rows, and for each archive this volume holds (the manifest says which fragment
index of which part), checks that it is present, of the right size, and that every
framed fragment's CRC32C and index verify. Whatever fails is queued for heal, where the
healer rebuilds it from the other volumes. Bytes per second are bounded so a scrub never
competes with clients for the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from erasure import Codec, FragmentCorrupt
from shardgate.manifest import ObjectManifest
from volume_server import row_reads
from volume_server.fileio import LockedFd
from volume_server.store import Store

log = logging.getLogger("shardgate.volume.scrub")

ROWS_PER_PAGE = 200
MAX_PROBLEMS_LISTED = 100


@dataclass
class ScrubReport:
    rows: int = 0
    archives: int = 0
    bytes: int = 0
    missing: int = 0
    corrupt: int = 0
    started: float = 0.0
    finished: float = 0.0
    problems: list[str] = field(default_factory=list)  # "archive_id: what", the first 100


class Scrubber:
    def __init__(self, store: Store, bytes_per_second: float) -> None:
        self.store = store
        self.rate = bytes_per_second
        self._codecs: dict[tuple, Codec] = {}
        self.last: ScrubReport | None = None
        self.progress = ScrubReport()

    def _codec(self, manifest: ObjectManifest) -> Codec:
        ec = manifest.erasure
        assert ec is not None
        key = (ec.k, ec.m, ec.ec_type, ec.segment_size)
        if key not in self._codecs:
            self._codecs[key] = Codec(*key)
        return self._codecs[key]

    async def run_pass(self) -> ScrubReport:
        """Walk every object row once; returns what was found."""
        report = self.progress = ScrubReport(started=time.time())
        after = 0
        while True:
            rows = await self.store.index.read(row_reads.scan_rows, after, ROWS_PER_PAGE)
            if not rows:
                break
            for row in rows:
                after = row["id"]
                report.rows += 1
                await self._scrub_row(row, report)
        report.finished = time.time()
        self.last = report
        if report.missing or report.corrupt:
            log.warning("scrub: %s", report)
        return report

    async def _scrub_row(self, row: dict, report: ScrubReport) -> None:
        if row["deleted"]:
            return
        manifest = ObjectManifest.from_dict(row["manifest"])
        if manifest.erasure is None:
            return
        codec = self._codec(manifest)
        for part in manifest.parts:
            for index, holder in enumerate(part.placement):
                if holder != self.store.volume_id or part.size == 0:
                    continue
                archive = part.archive_id(manifest.incarnation, manifest.key, index)
                report.archives += 1
                seeds = part.seeds(manifest.incarnation, manifest.key) or {}
                problem = await self._verify(codec, part.size, archive, index,
                                             seeds.get(index, 0), report)
                if problem is not None:
                    if len(report.problems) < MAX_PROBLEMS_LISTED:
                        report.problems.append(f"{archive}: {problem}")
                    await self.store.queue_heal(manifest.incarnation, manifest.key,
                                                manifest.version_id, archive, index,
                                                f"scrub: {problem}")

    async def _verify(self, codec: Codec, size: int, archive: str, index: int, seed: int,
                      report: ScrubReport) -> str | None:
        """None if the archive verifies, else what is wrong with it."""
        layout = codec.layout(size)
        opened = await self.store.open_archive(archive)
        if opened is None:
            report.missing += 1
            return "archive missing"
        try:
            for segment in range(layout.num_segments):
                length = layout.framed_length(segment)
                offset = layout.archive_offset(segment)
                if isinstance(opened, LockedFd):
                    framed = await asyncio.to_thread(opened.pread, length, offset)
                else:
                    framed = opened[offset:offset + length]
                if len(framed) != length:
                    report.corrupt += 1
                    return f"archive short in segment {segment}"
                try:
                    codec.unframe(framed, index, seed)
                except FragmentCorrupt as exc:
                    report.corrupt += 1
                    return f"checksum failure in segment {segment}: {exc.reason}"
                report.bytes += length
                await self._pace(length)
        finally:
            if isinstance(opened, LockedFd):
                opened.close()
        return None

    async def _pace(self, length: int) -> None:
        if self.rate > 0:
            await asyncio.sleep(length / self.rate)


async def run_forever(scrubber: Scrubber, interval: float) -> None:
    """A pass, then a pause of `interval` seconds, forever (0 disables scrubbing)."""
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            await scrubber.run_pass()
        except Exception:  # a failed pass is retried at the next one
            log.exception("scrub pass failed")
