"""The request body as the handler sees it: payload bytes, verified as they stream.

aws-chunked bodies are decoded (chunk signatures checked, trailers collected); a body
whose SHA-256 was signed is hashed on the way and fails at the end if it differs, which
is before any commit, so a tampered body is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from starlette.requests import Request

from gateway.auth.sigv4 import SHA256_PAYLOAD, AuthContext
from gateway.auth.streaming import AwsChunkedReader
from gateway.errors import S3Error


class RequestBody:
    def __init__(self, request: Request, headers: dict[str, str],
                 auth: AuthContext | None) -> None:
        self._request = request
        self._headers = headers
        self._auth = auth
        self.trailers: dict[str, str] = {}

    def _decoded_length(self) -> int | None:
        raw = self._headers.get("x-amz-decoded-content-length")
        return int(raw) if raw and raw.isdigit() else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        source = self._request.stream()
        auth = self._auth
        if auth is not None and auth.streaming:
            reader = AwsChunkedReader(source, auth,
                                      decoded_content_length=self._decoded_length())
            async for piece in reader:
                yield piece
            self.trailers = reader.trailers
            return
        if auth is not None and auth.payload_mode == SHA256_PAYLOAD and auth.payload_sha256:
            digest = hashlib.sha256()
            async for chunk in source:
                if chunk:
                    digest.update(chunk)
                    yield chunk
            if not hmac.compare_digest(digest.hexdigest(), auth.payload_sha256.lower()):
                raise S3Error("XAmzContentSHA256Mismatch",
                              extra={"ClientComputedContentSHA256": auth.payload_sha256,
                                     "S3ComputedContentSHA256": digest.hexdigest()})
            return
        async for chunk in source:
            if chunk:
                yield chunk
