"""Server-side copies: a source version's verified bytes, streamed into a new write.

The bytes come from an ObjectReader (every fragment checked against its CRC, a bad one
replaced from parity), so a copy never stores what the source does not hold. Where the
source's own whole-object digests apply (its MD5 when it was a single PUT, its full-object
checksum when the algorithm is the same), the copy is verified against them as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.objects.ingest import Expectations
from gateway.objects.reader import ObjectReader
from shardgate.manifest import ObjectManifest


class ReaderPayload:
    """A source reader as a request body (no trailers)."""

    def __init__(self, reader: ObjectReader) -> None:
        self.reader = reader

    @property
    def trailers(self) -> dict[str, str]:
        return {}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.reader.stream():
            yield chunk


def copy_expectations(source: ObjectManifest, start: int, end: int, max_size: int,
                      algorithm: str | None) -> Expectations:
    """What the copied bytes [start, end] of `source` must be: their length always, and
    the source's MD5 and full-object checksum when the whole object is copied."""
    size = end - start + 1
    whole = start == 0 and size == source.size
    md5 = None
    if whole and len(source.parts) == 1 and "-" not in source.etag:
        md5 = bytes.fromhex(source.etag)
    checksum = None
    if whole and algorithm and source.checksum_type == "FULL_OBJECT":
        checksum = source.checksums.get(algorithm)
    return Expectations(size, max_size, md5, algorithm, checksum)
