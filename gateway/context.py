"""The request context a handler gets: a verified user, the endpoint, the object layer."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.auth.sigv4 import AuthContext
from gateway.body import RequestBody
from gateway.checksums import Checksum, algorithm_from_headers, trailer_checksum, verify
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.layer import ObjectLayer
from gateway.router import Endpoint
from shardgate.config import ClusterConfig, User


@dataclass
class RequestContext:
    request: Request
    endpoint: Endpoint
    headers: dict[str, str]
    request_id: str
    objects: ObjectLayer
    user: User
    auth: AuthContext | None

    @property
    def user_id(self) -> str:
        return self.user.canonical_id

    async def bucket(self) -> BucketRecord:
        """The endpoint's bucket, owned by this user (AccessDenied otherwise)."""
        return await self.objects.bucket(self.endpoint.bucket, self.user_id)

    @property
    def config(self) -> ClusterConfig:
        return self.objects.config

    def body(self) -> RequestBody:
        return RequestBody(self.request, self.headers, self.auth)

    async def read_small_body(self, limit: int) -> bytes:
        """Bodies of XML requests are small; refuse anything larger than `limit`, and
        check the flexible checksum they carry (DeleteObjects sends CRC32, no MD5)."""
        algorithm, expected = algorithm_from_headers(self.headers)
        body = self.body()
        out = bytearray()
        async for chunk in body:
            out += chunk
            if len(out) > limit:
                raise S3Error("MaxMessageLengthExceeded")
        if algorithm and expected is None and "x-amz-trailer" in self.headers:
            expected = trailer_checksum(body.trailers, algorithm)
        if algorithm and expected is not None:
            checksum = Checksum(algorithm)
            checksum.update(bytes(out))
            verify(checksum, expected)
        return bytes(out)
