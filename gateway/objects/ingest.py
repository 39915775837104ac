"""Stage a body and verify it against what the client declared, before anything commits.

The protocol layer turns headers into an `Expectations`; this module streams the body
onto the placement, then compares size, MD5 and the flexible checksum. Any mismatch
removes the staged archives before the error leaves, so a bad body is never stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gateway.checksums import trailer_checksum
from gateway.errors import S3Error
from gateway.objects.cluster import Cluster
from gateway.objects.digests import BodyDigests
from gateway.objects.writer import Staged, abort_staged, stage_body

DEFAULT_CHECKSUM = "CRC64NVME"  # what S3 stores when the client sends none


class Payload(Protocol):
    """A request body: verified payload bytes, then the trailers it carried."""

    @property
    def trailers(self) -> dict[str, str]: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Expectations:
    """What the client declared about a body (parsed from headers by the S3 layer)."""

    size: int | None  # None: streamed without a length (HTTP chunked)
    max_size: int
    md5: bytes | None = None
    algorithm: str | None = None  # the client's checksum algorithm
    checksum: str | None = None  # its base64 value, when sent as a header
    checksum_in_trailer: bool = False


@dataclass(frozen=True)
class Verified:
    """A staged body whose size and digests matched the expectations."""

    staged: Staged
    algorithm: str  # the client's checksum algorithm, else the default one
    checksum: str  # its base64 value
    requested: bool  # the client named the algorithm (so the answer echoes the value)


async def stage_verified(cluster: Cluster, placement: tuple[str, ...], body: Payload,
                         expect: Expectations, seeds: list[int] | None = None,
                         part: bool = False) -> Verified:
    """Stage `body` on `placement`; abort unless it is what the client declared. `seeds`
    start each fragment archive's CRCs from its identity (erasure.archive_seed); `part`:
    a multipart upload's part."""
    if expect.size is not None and expect.size > expect.max_size:
        raise S3Error("EntityTooLarge", extra={"ProposedSize": str(expect.size),
                                               "MaxSizeAllowed": str(expect.max_size)})
    digests = new_digests(expect)
    staged = await stage_body(cluster, placement, body, digests, expect.size, seeds, part)
    try:
        actual = verify_body(digests, expect, body.trailers)
    except BaseException:
        await abort_staged(cluster, staged)
        raise
    return Verified(staged, digests.algorithm, actual, expect.algorithm is not None)


def new_digests(expect: Expectations) -> BodyDigests:
    """The digests a body is checked with: MD5, and the client's checksum or ours."""
    return BodyDigests(expect.algorithm or DEFAULT_CHECKSUM)


def verify_body(digests: BodyDigests, expect: Expectations, trailers: dict[str, str]
                ) -> str:
    """Raise unless the body read into `digests` is what the client declared (size, MD5,
    checksum in a header or trailer); return its checksum, base64."""
    if expect.size is not None and digests.size != expect.size:
        raise S3Error("IncompleteBody")
    if digests.size > expect.max_size:
        raise S3Error("EntityTooLarge")
    if expect.md5 is not None and expect.md5 != bytes.fromhex(digests.md5_hex):
        raise S3Error("BadDigest", extra={"ExpectedDigest": expect.md5.hex(),
                                          "CalculatedDigest": digests.md5_b64})
    expected = expect.checksum
    if expect.algorithm and expected is None and expect.checksum_in_trailer:
        expected = trailer_checksum(trailers, expect.algorithm)
    actual = digests.checksum_b64()
    if expected is not None and expected != actual:
        raise S3Error("BadDigest", f"The {expect.algorithm} you specified did not match "
                                   "the calculated checksum.")
    assert actual is not None  # new_digests always names an algorithm
    return actual
