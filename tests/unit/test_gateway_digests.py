"""gateway.objects.digests: streamed MD5 and flexible checksums against known vectors."""

from __future__ import annotations

import base64
import hashlib
import zlib

import pytest

from gateway.errors import S3Error
from gateway.objects.digests import BodyDigests

DATA = bytes(range(256)) * 1000 + b"tail"


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize("size", [1, 7, 4096, 65536, len(DATA)])
def test_md5_matches_hashlib(size: int) -> None:
    digests = BodyDigests()
    for chunk in chunks(DATA, size):
        digests.update(chunk)
    assert digests.md5_hex == hashlib.md5(DATA).hexdigest()
    assert digests.md5_b64 == b64(hashlib.md5(DATA).digest())
    assert digests.size == len(DATA)
    assert digests.algorithm is None
    assert digests.checksum_digest() is None and digests.checksum_b64() is None


def test_empty_body() -> None:
    digests = BodyDigests("CRC32")
    assert digests.md5_hex == "d41d8cd98f00b204e9800998ecf8427e"
    assert digests.size == 0
    assert digests.checksum_b64() == "AAAAAA=="


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("CRC32", zlib.crc32(DATA).to_bytes(4, "big")),
    ("SHA1", hashlib.sha1(DATA).digest()),
    ("SHA256", hashlib.sha256(DATA).digest()),
])
def test_checksum_matches_reference(algorithm: str, expected: bytes) -> None:
    digests = BodyDigests(algorithm)
    for chunk in chunks(DATA, 1000):
        digests.update(memoryview(chunk))
    assert digests.checksum_digest() == expected
    assert digests.checksum_b64() == b64(expected)
    assert digests.md5_hex == hashlib.md5(DATA).hexdigest()


@pytest.mark.parametrize(("algorithm", "check"), [
    ("CRC32", 0xCBF43926),            # CRC-32/ISO-HDLC check value
    ("CRC32C", 0xE3069283),           # CRC-32/ISCSI
    ("CRC64NVME", 0xAE8B14860A799888),  # CRC-64/NVME
])
def test_crc_check_values(algorithm: str, check: int) -> None:
    digests = BodyDigests(algorithm)
    digests.update(b"1234")
    digests.update(b"56789")
    width = 8 if algorithm == "CRC64NVME" else 4
    assert digests.checksum_digest() == check.to_bytes(width, "big")


def test_algorithm_name_is_case_insensitive() -> None:
    digests = BodyDigests("sha256")
    digests.update(b"abc")
    assert digests.checksum_digest() == hashlib.sha256(b"abc").digest()


def test_unknown_algorithm_is_invalid_request() -> None:
    with pytest.raises(S3Error) as exc:
        BodyDigests("MD4")
    assert exc.value.code == "InvalidRequest"
