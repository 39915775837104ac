"""Digests computed while a body streams through: MD5 (the ETag) and one flexible checksum."""

from __future__ import annotations

import base64
import hashlib

from gateway.checksums import Checksum


class BodyDigests:
    def __init__(self, algorithm: str | None = None) -> None:
        self._md5 = hashlib.md5()
        self.algorithm = algorithm
        self._checksum = Checksum(algorithm) if algorithm else None
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        """Safe to call from a worker thread: hashlib and zlib release the GIL on big data."""
        self._md5.update(data)
        if self._checksum is not None:
            self._checksum.update(data)
        self.size += len(data)

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    @property
    def md5_b64(self) -> str:
        return base64.b64encode(self._md5.digest()).decode()

    def checksum_digest(self) -> bytes | None:
        return self._checksum.digest() if self._checksum is not None else None

    def checksum_b64(self) -> str | None:
        return self._checksum.b64() if self._checksum is not None else None
