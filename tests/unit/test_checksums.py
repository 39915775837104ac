"""Flexible checksums: known vectors, botocore's implementations, header parsing, multipart."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest
from botocore.httpchecksum import (
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import checksums
from gateway.checksums import Checksum
from gateway.errors import S3Error

BOTOCORE = {"CRC32": Crc32Checksum, "CRC32C": CrtCrc32cChecksum,
            "CRC64NVME": CrtCrc64NvmeChecksum, "SHA1": Sha1Checksum, "SHA256": Sha256Checksum}


def b64int(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


@pytest.mark.parametrize(("algorithm", "data", "expected"), [
    # catalogue check values ("123456789") and well-known "hello world" digests
    ("CRC32", b"123456789", b64int(0xCBF43926, 4)),
    ("CRC32C", b"123456789", b64int(0xE3069283, 4)),
    ("CRC64NVME", b"123456789", b64int(0xAE8B14860A799888, 8)),
    ("CRC32", b"hello world", b64int(0x0D4A1185, 4)),
    ("CRC32C", b"hello world", b64int(0xC99465AA, 4)),
    ("CRC32", b"", "AAAAAA=="),
    ("SHA1", b"hello world", "Kq5sNclPz7QV2+lfQIuc6R7oRu0="),
    ("SHA256", b"hello world", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="),
    ("CRC32C", b"a" * 66560, "sOO8/Q=="),  # the AWS sigv4-streaming-trailers example
])
def test_known_vectors(algorithm: str, data: bytes, expected: str) -> None:
    assert checksums.checksum_of(data, algorithm) == expected


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=5000), cut=st.integers(0, 5000),
       algorithm=st.sampled_from(checksums.ALGORITHMS))
def test_matches_botocore_incrementally(data: bytes, cut: int, algorithm: str) -> None:
    ours, theirs = Checksum(algorithm), BOTOCORE[algorithm]()
    ours.update(data[:cut])
    ours.update(memoryview(data)[cut:])
    theirs.update(data)
    assert ours.digest() == theirs.digest()
    assert ours.b64() == theirs.b64digest()
    assert len(ours.digest()) == checksums.DIGEST_SIZE[algorithm]


def test_header_names_and_normalize() -> None:
    assert checksums.header_name("crc64nvme") == "x-amz-checksum-crc64nvme"
    assert checksums.normalize(" sha256 ") == "SHA256"
    with pytest.raises(S3Error):
        checksums.normalize("MD5")


# --- headers and trailers ------------------------------------------------------------------


def test_algorithm_from_checksum_header() -> None:
    value = checksums.checksum_of(b"x", "CRC32")
    headers = {"x-amz-checksum-crc32": value, "x-amz-sdk-checksum-algorithm": "CRC32"}
    assert checksums.algorithm_from_headers(headers) == ("CRC32", value)


def test_algorithm_from_trailer() -> None:
    headers = {"x-amz-trailer": "x-amz-checksum-crc64nvme",
               "x-amz-sdk-checksum-algorithm": "crc64nvme"}
    assert checksums.algorithm_from_headers(headers) == ("CRC64NVME", None)


def test_algorithm_sdk_only_and_nothing() -> None:
    assert checksums.algorithm_from_headers({"x-amz-sdk-checksum-algorithm": "SHA1"}) == \
        ("SHA1", None)
    assert checksums.algorithm_from_headers({"content-type": "x"}) == (None, None)


@pytest.mark.parametrize("headers", [
    {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "Kq5sNclPz7QV2+lfQIuc6R7oRu0="},
    {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-trailer": "x-amz-checksum-crc32c"},
    {"x-amz-checksum-crc32": "AAAAAA=="[:-2]},          # wrong length
    {"x-amz-checksum-crc32": "not*base64"},             # not base64
    {"x-amz-checksum-sha256": "AAAAAA=="},              # CRC-sized value for SHA256
    {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-sdk-checksum-algorithm": "SHA256"},
    {"x-amz-sdk-checksum-algorithm": "MD5"},
    {"x-amz-trailer": "x-amz-meta-foo"},
])
def test_invalid_checksum_requests(headers: dict[str, str]) -> None:
    with pytest.raises(S3Error) as err:
        checksums.algorithm_from_headers(headers)
    assert err.value.code == "InvalidRequest"


def test_trailer_checksum_and_verify() -> None:
    data = b"payload"
    value = checksums.checksum_of(data, "CRC32C")
    assert checksums.trailer_checksum({"x-amz-checksum-crc32c": value}, "CRC32C") == value
    with pytest.raises(S3Error) as err:
        checksums.trailer_checksum({}, "CRC32C")
    assert err.value.code == "InvalidRequest"
    running = Checksum("CRC32C")
    running.update(data)
    checksums.verify(running, value)
    with pytest.raises(S3Error) as err:
        checksums.verify(running, checksums.checksum_of(b"other", "CRC32C"))
    assert err.value.code == "BadDigest"
    assert "CRC32C" in err.value.message


# --- multipart -----------------------------------------------------------------------------


def parts_of(seed: int, sizes: list[int]) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(n) for n in sizes]


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_composite_is_checksum_of_part_digests(algorithm: str) -> None:
    parts = parts_of(1, [5 * 1024 * 1024, 1234, 0, 77])
    digests = [base64.b64decode(checksums.checksum_of(p, algorithm)) for p in parts]
    expected = checksums.checksum_of(b"".join(digests), algorithm)
    assert checksums.composite(digests, algorithm) == f"{expected}-4"
    if algorithm.startswith("SHA"):
        h = hashlib.new(algorithm.lower(), b"".join(hashlib.new(algorithm.lower(), p).digest()
                                                      for p in parts))
        assert checksums.composite(digests, algorithm) == \
            base64.b64encode(h.digest()).decode() + "-4"


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(0, 20000), max_size=8), seed=st.integers(0, 1000),
       algorithm=st.sampled_from(checksums.FULL_OBJECT_ALGORITHMS))
def test_full_object_equals_checksum_of_concatenation(sizes: list[int], seed: int,
                                                      algorithm: str) -> None:
    parts = parts_of(seed, sizes)
    pairs = [(base64.b64decode(checksums.checksum_of(p, algorithm)), len(p)) for p in parts]
    assert checksums.full_object(pairs, algorithm) == \
        checksums.checksum_of(b"".join(parts), algorithm)


def test_full_object_large_parts() -> None:
    parts = parts_of(2, [8 * 1024 * 1024, 5 * 1024 * 1024 + 3, 1])
    for algorithm in checksums.FULL_OBJECT_ALGORITHMS:
        pairs = [(base64.b64decode(checksums.checksum_of(p, algorithm)), len(p)) for p in parts]
        assert checksums.full_object(pairs, algorithm) == \
            checksums.checksum_of(b"".join(parts), algorithm)


def test_full_object_rejects_sha() -> None:
    with pytest.raises(S3Error):
        checksums.full_object([(b"\0" * 32, 1)], "SHA256")
