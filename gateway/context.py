"""The request context a handler gets: a verified user, the endpoint, the cluster."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway.auth.sigv4 import AuthContext
from gateway.body import RequestBody
from gateway.bucket_records import BucketRecord, BucketRecords
from gateway.cluster import Cluster
from gateway.errors import S3Error
from gateway.router import Endpoint
from shardgate.config import User


@dataclass
class RequestContext:
    request: Request
    endpoint: Endpoint
    headers: dict[str, str]
    request_id: str
    cluster: Cluster
    buckets: BucketRecords
    user: User
    auth: AuthContext | None

    @property
    def user_id(self) -> str:
        return self.user.canonical_id

    async def bucket(self) -> BucketRecord:
        """The endpoint's bucket, owned by this user (AccessDenied otherwise)."""
        return await self.buckets.require(self.endpoint.bucket, self.user_id)

    def body(self) -> RequestBody:
        return RequestBody(self.request, self.headers, self.auth)

    async def read_small_body(self, limit: int) -> bytes:
        """Bodies of XML requests are small; refuse anything larger than `limit`."""
        out = bytearray()
        async for chunk in self.body():
            out += chunk
            if len(out) > limit:
                raise S3Error("MaxMessageLengthExceeded")
        return bytes(out)
