"""Turn a request body into its verified payload stream, whatever x-amz-content-sha256 said.

Every reader raises at the end of the stream when the body does not match what was
signed, so a caller that commits only after the stream ended never stores a forged body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from gateway.auth.context import SHA256_PAYLOAD, STREAMING_UNSIGNED_TRAILER, AuthContext
from gateway.auth.streaming import AwsChunkedReader
from gateway.errors import S3Error


class PlainReader:
    """The body as sent: UNSIGNED-PAYLOAD or anonymous requests. No trailers."""

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self.trailers: dict[str, str] = {}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._source:
            yield data


HASH_BATCH = 1 << 20


class Sha256Reader:
    """Hashes the body as it passes; raises XAmzContentSHA256Mismatch at the end if it differs.

    Chunks are hashed in batches of HASH_BATCH bytes in a worker thread (hashlib releases
    the GIL on large buffers), one batch in flight while the next one arrives, so the
    event loop keeps moving bytes.
    """

    def __init__(self, source: AsyncIterable[bytes], expected_hex: str) -> None:
        self._source = source
        self._expected = expected_hex.lower()
        self.trailers: dict[str, str] = {}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        batch: list[bytes] = []
        batched = 0
        inflight: asyncio.Future | None = None
        async for data in self._source:
            yield data
            batch.append(data)
            batched += len(data)
            if batched >= HASH_BATCH:
                if inflight is not None:
                    await inflight
                inflight = asyncio.ensure_future(asyncio.to_thread(digest.update,
                                                                   b"".join(batch)))
                batch, batched = [], 0
        if inflight is not None:
            await inflight
        digest.update(b"".join(batch))
        actual = digest.hexdigest()
        if not hmac.compare_digest(actual, self._expected):
            raise S3Error("XAmzContentSHA256Mismatch", extra={
                "ClientComputedContentSHA256": self._expected,
                "S3ComputedContentSHA256": actual})


def decoded_content_length(headers: Mapping[str, str]) -> int | None:
    """x-amz-decoded-content-length as an int (None when absent)."""
    raw = headers.get("x-amz-decoded-content-length")
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise S3Error("InvalidArgument", "Invalid x-amz-decoded-content-length",
                      extra={"ArgumentName": "x-amz-decoded-content-length",
                             "ArgumentValue": raw})
    return value


def body_reader(source: AsyncIterable[bytes], auth: AuthContext | None,
                headers: Mapping[str, str]) -> PlainReader | Sha256Reader | AwsChunkedReader:
    """The reader for this request's body: iterate it for payload bytes, then read
    `.trailers` (non-empty only for aws-chunked bodies with a trailer)."""
    if auth is None:
        if headers.get("x-amz-content-sha256", "").strip() != STREAMING_UNSIGNED_TRAILER:
            return PlainReader(source)
        # SDKs send aws-chunked with a trailing checksum even without credentials.
        auth = AuthContext("", b"", "", "", "", STREAMING_UNSIGNED_TRAILER)
    if auth.streaming:
        return AwsChunkedReader(source, auth,
                                decoded_content_length=decoded_content_length(headers))
    if auth.payload_mode == SHA256_PAYLOAD and auth.payload_sha256 is not None:
        return Sha256Reader(source, auth.payload_sha256)
    return PlainReader(source)
