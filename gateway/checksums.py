"""S3 flexible checksums: compute, read from headers or trailers, combine for multipart.

Follows "Checking object integrity in Amazon S3" (S3 User Guide): digests are sent and
returned base64-encoded (CRCs as big-endian integers); a multipart object's checksum is
either composite, the checksum of the concatenated part digests suffixed "-<parts>", or
full-object, the CRC of the whole object (CRC types only, combined from the parts' CRCs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from awscrt import checksums as crt

from gateway.errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
CRC_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME")
COMPOSITE_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")  # S3: CRC64NVME is full-object only
FULL_OBJECT_ALGORITHMS = CRC_ALGORITHMS
DIGEST_SIZE = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
HEADER_PREFIX = "x-amz-checksum-"
HEADERS = {alg: HEADER_PREFIX + alg.lower() for alg in ALGORITHMS}
_BY_HEADER = {h: alg for alg, h in HEADERS.items()}
_COMBINE = {"CRC32": crt.combine_crc32, "CRC32C": crt.combine_crc32c,
            "CRC64NVME": crt.combine_crc64nvme}


def header_name(algorithm: str) -> str:
    """x-amz-checksum-<alg> for an algorithm name (also the trailer name)."""
    return HEADERS[normalize(algorithm)]


def normalize(algorithm: str) -> str:
    """Upper-case algorithm name; InvalidRequest for one S3 does not know."""
    name = algorithm.strip().upper()
    if name not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm!r} is not supported.")
    return name


class Checksum:
    """A running checksum: `update` with bytes, then `digest` / `b64`.

    zlib.crc32 and hashlib release the GIL on large buffers; awscrt computes CRC32C and
    CRC64NVME with hardware instructions where the CPU has them.
    """

    def __init__(self, algorithm: str) -> None:
        self.algorithm = normalize(algorithm)
        self._crc = 0
        self._hash = hashlib.new(self.algorithm.lower()) \
            if self.algorithm in ("SHA1", "SHA256") else None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._hash is not None:
            self._hash.update(data)
        elif self.algorithm == "CRC32":
            self._crc = zlib.crc32(data, self._crc)
        elif self.algorithm == "CRC32C":
            self._crc = crt.crc32c(data, self._crc)
        else:
            self._crc = crt.crc64nvme(data, self._crc)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(DIGEST_SIZE[self.algorithm], "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def checksum_of(data: bytes, algorithm: str) -> str:
    """Base64 checksum of one buffer."""
    c = Checksum(algorithm)
    c.update(data)
    return c.b64()


def decode_b64(value: str, algorithm: str, source: str | None = None) -> bytes:
    """The raw digest in a base64 checksum value; InvalidRequest if not valid for `algorithm`."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DIGEST_SIZE[algorithm]:
        name = source or header_name(algorithm)
        raise S3Error("InvalidRequest", f"Value for {name} header is invalid.")
    return raw


def algorithm_from_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(algorithm, expected base64 digest or None) requested by a PUT / UploadPart.

    The digest comes from an x-amz-checksum-<alg> header; with x-amz-trailer naming
    x-amz-checksum-<alg> it arrives in the trailer instead (expected None: read it with
    `trailer_checksum` once the body is consumed). x-amz-sdk-checksum-algorithm alone asks
    for the algorithm without a value to check. (None, None) when no checksum is involved.
    """
    present = {_BY_HEADER[n]: v for n, v in headers.items() if n in _BY_HEADER}
    if len(present) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple "
                      "checksum Types are not allowed.")
    trailer_alg = None
    trailer = headers.get("x-amz-trailer")
    if trailer is not None:
        names = [t.strip().lower() for t in trailer.split(",") if t.strip()]
        named = [_BY_HEADER[t] for t in names if t in _BY_HEADER]
        if len(named) != len(names) or len(named) > 1:
            raise S3Error("InvalidRequest", "The value specified in the x-amz-trailer header "
                          "is not supported")
        trailer_alg = named[0] if named else None
    sdk = headers.get("x-amz-sdk-checksum-algorithm")
    sdk_alg = None
    if sdk is not None:
        try:
            sdk_alg = normalize(sdk)
        except S3Error as exc:
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is "
                          "invalid.") from exc
    if present and trailer_alg:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple "
                      "checksum Types are not allowed.")
    if present:
        (algorithm, value), = present.items()
        decode_b64(value, algorithm)
        expected: str | None = value.strip()
    else:
        algorithm, expected = trailer_alg or sdk_alg, None
    if sdk_alg is not None and algorithm != sdk_alg:
        raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is "
                      "invalid.")
    return algorithm, expected


def trailer_checksum(trailers: Mapping[str, str], algorithm: str) -> str:
    """The base64 checksum a trailer carried for `algorithm` (InvalidRequest if absent/bad)."""
    name = header_name(algorithm)
    value = trailers.get(name)
    if value is None:
        raise S3Error("InvalidRequest", f"The trailer {name} declared in x-amz-trailer was "
                      "not sent.")
    decode_b64(value, algorithm, name)
    return value.strip()


def verify(checksum: Checksum, expected_b64: str) -> None:
    """Raise BadDigest unless the computed checksum equals the client's."""
    if checksum.digest() != decode_b64(expected_b64, checksum.algorithm):
        raise S3Error("BadDigest", f"The {checksum.algorithm} you specified did not match the "
                      "calculated checksum.")


def composite(part_digests: list[bytes], algorithm: str) -> str:
    """Composite multipart checksum: b64(checksum(digest1 || digest2 || ...)) + "-N"."""
    c = Checksum(algorithm)
    for digest in part_digests:
        c.update(digest)
    return f"{c.b64()}-{len(part_digests)}"


def full_object(parts: list[tuple[bytes, int]], algorithm: str) -> str:
    """Full-object CRC of a multipart object from (part CRC digest, part length) pairs."""
    algorithm = normalize(algorithm)
    if algorithm not in FULL_OBJECT_ALGORITHMS:
        raise S3Error("InvalidRequest", f"The FULL_OBJECT checksum type cannot be used with "
                      f"the {algorithm.lower()} checksum algorithm.")
    combine = _COMBINE[algorithm]
    crc = 0
    for digest, length in parts:
        crc = combine(crc, int.from_bytes(digest, "big"), length)
    return base64.b64encode(crc.to_bytes(DIGEST_SIZE[algorithm], "big")).decode("ascii")


CHECKSUM_TYPES = ("COMPOSITE", "FULL_OBJECT")


@dataclass(frozen=True)
class ObjectChecksum:
    """The whole-object checksum a CompleteMultipartUpload request declares in its headers."""

    algorithm: str | None  # None when only x-amz-checksum-type was sent
    digest: bytes = b""
    parts: int | None = None  # the N of a composite "<base64>-N" value
    checksum_type: str | None = None


def complete_checksum(headers: Mapping[str, str]) -> ObjectChecksum | None:
    """x-amz-checksum-<alg> (a full-object CRC, or a composite "<base64>-N") and
    x-amz-checksum-type of a Complete request. They describe the object being made, not the
    XML body, so they are checked against the object's checksum; None if none was sent."""
    present = {_BY_HEADER[n]: v for n, v in headers.items() if n in _BY_HEADER}
    if len(present) > 1:
        raise S3Error("InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple "
                      "checksum Types are not allowed.")
    kind = headers.get("x-amz-checksum-type")
    if kind is not None:
        kind = kind.strip().upper()
        if kind not in CHECKSUM_TYPES:
            raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if not present:
        return None if kind is None else ObjectChecksum(None, checksum_type=kind)
    (algorithm, value), = present.items()
    encoded, dash, count = value.strip().partition("-")  # "-" is not in base64's alphabet
    parts = None
    try:
        if dash:
            if not count.isdigit() or int(count) < 1:
                raise S3Error("InvalidRequest")
            parts = int(count)
        digest = decode_b64(encoded, algorithm)
    except S3Error as exc:
        # A value that is no checksum at all cannot match the object's: S3 says BadDigest.
        raise S3Error("BadDigest", f"Value for {HEADERS[algorithm]} header is invalid.") \
            from exc
    return ObjectChecksum(algorithm, digest, parts, kind)


def verify_object_checksum(expected: ObjectChecksum, checksums: Mapping[str, str],
                           checksum_type: str) -> None:
    """Compare a Complete request's declared checksum with the one the object gets.

    BadDigest when they disagree (value, part count or checksum type); InvalidRequest when
    the object has no checksum of that algorithm to compare with.
    """
    if expected.checksum_type and checksum_type and expected.checksum_type != checksum_type:
        raise S3Error("BadDigest", f"The checksum type {expected.checksum_type} you specified "
                      f"does not match the upload's checksum type {checksum_type}.")
    algorithm = expected.algorithm
    if algorithm is None:
        return
    actual = checksums.get(algorithm)
    if actual is None:
        held = next(iter(checksums), None)
        why = (f"the {held.lower()} checksum algorithm" if held
               else "no checksum the parts allow to combine")
        raise S3Error("InvalidRequest", f"The upload was created using {why}; the complete "
                      f"request sent a {algorithm.lower()} checksum.")
    encoded, _, count = actual.partition("-")
    same_parts = expected.parts is None or count == str(expected.parts)
    if base64.b64decode(encoded) != expected.digest or not same_parts:
        raise S3Error("BadDigest", f"The {algorithm.lower()} you specified did not match the "
                      "calculated checksum.")
