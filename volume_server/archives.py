"""Reading fragment archives: one byte range, streamed in bounded chunks.

A gateway asks for whole fragments inside an archive, often from large archives and
many at once, so a read never loads more than CHUNK bytes of a file at a time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from volume_server.fileio import LockedFd

CHUNK = 1024 * 1024

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
    return Response(b"" if head else body, status, headers,
                    media_type="application/octet-stream")


class _FileStream(StreamingResponse):
    """Streams one span of an open file and closes it however the response ends."""

    def __init__(self, fd: LockedFd, first: int, length: int, status: int,
                 headers: dict[str, str]) -> None:
        self._fd = fd
        super().__init__(self._chunks(first, length), status, headers,
                         media_type="application/octet-stream")

    async def _chunks(self, offset: int, remaining: int) -> AsyncIterator[bytes]:
        while remaining > 0:
            data = await self._fd.aread(min(CHUNK, remaining), offset)
            if not data:
                raise OSError("archive shrank while being read")
            offset += len(data)
            remaining -= len(data)
            yield data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()  # type: ignore[attr-defined]
            self._fd.close()


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
