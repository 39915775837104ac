"""Reading fragment archives: one byte range, streamed in bounded chunks.

A gateway asks for whole fragments inside an archive, often from large archives and
many at once, so a read never loads more than CHUNK bytes of a file at a time. A sliced
read (erasure/slices.py) sends part of each fragment, checked against its stored CRC
here: each thread job holds up to CHUNK bytes of fragments (or one larger fragment)
and the slices cut from them. Every fragment byte sent is counted
(`shardgate_fragment_sent_bytes_total`), whichever route sends it: read amplification
is measured from the volumes' own counters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence

from prometheus_client import Counter
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from erasure import SliceSpec, cut_slice
from shardgate.faults import kill_point
from volume_server.fileio import LockedFd, read_off_loop

log = logging.getLogger("shardgate.volume")

CHUNK = 1024 * 1024

FRAGMENT_BYTES = Counter("shardgate_fragment_sent_bytes_total",
                         "Fragment archive bytes sent to gateways, by any route.")

SLICED_BYTES = Counter("shardgate_fragment_sliced_bytes_total",
                       "Fragment bytes read and checked for sliced reads (of which only the "
                       "slices were sent).")
SLICE_CORRUPT = Counter("shardgate_fragment_slice_corrupt_total",
                        "Fragments that failed their stored CRC in a sliced read.")

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class BadRange(ValueError):
    """The Range header is not one `bytes=a-b` range."""


class Unsatisfiable(ValueError):
    """The range starts past the end of the archive."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, clamped to the archive; None for the whole archive."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        raise BadRange(f"unsupported Range {header!r}")
    first_s, last_s = match.groups()
    if first_s == "":
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header, size)
        return max(0, size - suffix), size - 1
    first = int(first_s)
    if last_s != "" and int(last_s) < first:
        raise BadRange(f"unsupported Range {header!r}")
    if first >= size:
        raise Unsatisfiable(header, size)
    last = size - 1 if last_s == "" else int(last_s)
    return first, min(last, size - 1)


def _headers(span: tuple[int, int] | None, size: int) -> tuple[int, dict[str, str]]:
    headers = {"accept-ranges": "bytes"}
    if span is None:
        headers["content-length"] = str(size)
        return 200, headers
    first, last = span
    headers["content-length"] = str(last - first + 1)
    headers["content-range"] = f"bytes {first}-{last}/{size}"
    return 206, headers


def bytes_response(data: bytes, range_header: str | None, head: bool) -> Response:
    """An inline archive (small, from SQLite)."""
    span = parse_range(range_header, len(data))
    status, headers = _headers(span, len(data))
    body = data if span is None else data[span[0]: span[1] + 1]
    if not head:
        FRAGMENT_BYTES.inc(len(body))
    return Response(b"" if head else body, status, headers,
                    media_type="application/octet-stream")


class _FileStream(StreamingResponse):
    """Streams one span of an open file (after `prefix`, if any) and closes the file
    however the response ends."""

    def __init__(self, fd: LockedFd, first: int, length: int, status: int,
                 headers: dict[str, str], prefix: bytes = b"",
                 slices: SliceSpec | None = None) -> None:
        self._fd = fd
        chunks = (self._chunks(first, length, prefix) if slices is None
                  else self._slices(first, slices, prefix))
        super().__init__(chunks, status, headers, media_type="application/octet-stream")

    async def _chunks(self, offset: int, remaining: int, prefix: bytes
                      ) -> AsyncIterator[bytes]:
        if prefix:
            yield prefix
            kill_point("latest.after_rows")
        first = offset
        while remaining > 0:
            if offset > first:
                kill_point("archive.after_first")
            data = await self._fd.aread(min(CHUNK, remaining), offset)
            if not data:
                raise OSError("archive shrank while being read")
            offset += len(data)
            remaining -= len(data)
            FRAGMENT_BYTES.inc(len(data))
            yield data

    async def _slices(self, offset: int, spec: SliceSpec, prefix: bytes
                      ) -> AsyncIterator[bytes]:
        if prefix:
            yield prefix
            kill_point("latest.after_rows")
        frames = list(spec.frames)
        while frames:
            # As many fragments as fit in CHUNK (at least one): one read, one thread job.
            count, span = 1, frames[0][0]
            while count < len(frames) and span + frames[count][0] <= CHUNK:
                span += frames[count][0]
                count += 1
            if len(frames) < len(spec.frames):
                kill_point("slices.after_first")
            yield await read_off_loop(_cached_slices, _read_slices, self._fd, offset,
                                      frames[:count], spec.seed)
            del frames[:count]
            offset += span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self._fd.close()


def _read_slices(fd: LockedFd, offset: int, frames: list[tuple[int, int, int]],
                 seed: int) -> bytes:
    """Consecutive framed fragments read at once, each checked and its slice cut (a
    thread job)."""
    span = sum(n for n, _, _ in frames)
    data = fd.pread(span, offset)
    if len(data) != span:
        raise OSError("archive shrank while being read")
    return _cut_slices(data, 0, frames, seed, offset)


def _cached_slices(fd: LockedFd, offset: int, frames: list[tuple[int, int, int]],
                   seed: int) -> bytes | None:
    """As `_read_slices` when the page cache holds the whole span, else None."""
    data = fd.pread_cached(sum(n for n, _, _ in frames), offset)
    return None if data is None else _cut_slices(data, 0, frames, seed, offset)


def sliced_headers(spec: SliceSpec) -> dict[str, str]:
    return {"content-length": str(spec.sent), "x-slices": str(len(spec.frames))}


def _cut_slices(data: bytes, first: int, frames: Sequence[tuple[int, int, int]],
                seed: int, offset: int) -> bytes:
    """The slices of the framed fragments in `data` from `first` (archive offset
    `offset`), each fragment checked; counted as sent and as checked."""
    view, at, pieces = memoryview(data), first, []
    for n, lo, hi in frames:
        sent, intact = cut_slice(view[at:at + n], lo, hi, seed)
        if not intact:
            SLICE_CORRUPT.inc()
            log.warning("fragment at %d fails its CRC: its slice is sent marked bad",
                        offset + at - first)
        pieces.append(sent)
        at += n
    SLICED_BYTES.inc(at - first)
    body = b"".join(pieces)
    FRAGMENT_BYTES.inc(len(body))
    return body


def _slice_bytes(data: bytes, first: int, spec: SliceSpec) -> bytes:
    """An inline archive's slices (as _read_slices, from memory)."""
    return _cut_slices(data, first, spec.frames, spec.seed, first)


def sliced_span(range_header: str | None, spec: SliceSpec, size: int) -> tuple[int, int]:
    """The one `bytes=a-b` range of a sliced read: its fragments cover exactly [a, b],
    which lies inside the archive (416 otherwise: never clamped, as a plain read is)."""
    match = _RANGE.fullmatch((range_header or "").strip())
    if not match or "" in match.groups():
        raise BadRange("a sliced read needs one Range bytes=a-b")
    first, last = int(match.group(1)), int(match.group(2))
    if last - first + 1 != spec.span:
        raise BadRange(f"slices cover {spec.span} bytes, the range {last - first + 1}")
    if last >= size:
        raise Unsatisfiable(range_header, size)
    return first, last


def sliced_response(found: LockedFd | bytes, range_header: str | None,
                    spec: SliceSpec) -> Response:
    """A sliced read of the one range in `range_header`; takes ownership of an open file."""
    try:
        size = found.size() if isinstance(found, LockedFd) else len(found)
        span = sliced_span(range_header, spec, size)
    except BaseException:
        if isinstance(found, LockedFd):
            found.close()
        raise
    headers = sliced_headers(spec)
    if isinstance(found, bytes):
        return Response(_slice_bytes(found, span[0], spec), 200, headers,
                        media_type="application/octet-stream")
    return _FileStream(found, span[0], spec.span, 200, headers, slices=spec)


def file_response(fd: LockedFd, size: int, range_header: str | None, head: bool) -> Response:
    """Takes ownership of `fd`: it is closed when the response is done (or on error)."""
    try:
        span = parse_range(range_header, size)
    except ValueError:
        fd.close()
        raise
    status, headers = _headers(span, size)
    if head:
        fd.close()
        return Response(b"", status, headers, media_type="application/octet-stream")
    first, last = span if span is not None else (0, size - 1)
    return _FileStream(fd, first, last - first + 1, status, headers)


def prefixed_response(prefix: bytes, found: LockedFd | bytes | None, first: int,
                      last: int, slices: SliceSpec | None = None) -> Response:
    """`prefix` (the rows of a `latest` answer), then archive bytes [first, last] when
    `found` holds them all (or their `slices`); takes ownership of an open file. The
    `x-rows-length` header says where the rows end, `x-archive-bytes` how many archive
    bytes follow (0: none)."""
    if isinstance(found, LockedFd):
        try:
            size = found.size()
        except BaseException:
            found.close()
            raise
    else:
        size = len(found) if found is not None else 0
    if found is None or not 0 <= first <= last < size:
        if isinstance(found, LockedFd):
            found.close()
        return Response(prefix, 200, _prefix_headers(prefix, 0),
                        media_type="application/octet-stream")
    length = last - first + 1 if slices is None else slices.sent
    headers = _prefix_headers(prefix, length)
    if slices is not None:
        headers["x-slices"] = str(len(slices.frames))
    if isinstance(found, bytes):
        body = found[first:last + 1] if slices is None else _slice_bytes(found, first, slices)
        if slices is None:
            FRAGMENT_BYTES.inc(length)
        return Response(prefix + body, 200, headers, media_type="application/octet-stream")
    return _FileStream(found, first, length, 200, headers, prefix, slices)


def _prefix_headers(prefix: bytes, length: int) -> dict[str, str]:
    return {"content-length": str(len(prefix) + length), "x-rows-length": str(len(prefix)),
            "x-archive-bytes": str(length)}
