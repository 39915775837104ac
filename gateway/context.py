"""The request context a handler gets: a verified user, the endpoint, the object layer."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from gateway import access
from gateway.auth.sigv4 import AuthContext
from gateway.body import RequestBody
from gateway.checksums import Checksum, algorithm_from_headers, trailer_checksum, verify
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.layer import ObjectLayer
from gateway.objects.read_ahead import ReadAhead
from gateway.router import Endpoint
from shardgate.config import ClusterConfig, User
from shardgate.manifest import ObjectManifest

# The canonical id S3 gives an anonymous requester (the owner of what one writes into a
# public-read-write bucket).
ANONYMOUS_ID = "65a011a29cdf8ec533ec3d1ccaae921c"


@dataclass
class RequestContext:
    request: Request
    endpoint: Endpoint
    headers: dict[str, str]
    request_id: str
    objects: ObjectLayer
    user: User | None  # None: an anonymous (unsigned) request
    auth: AuthContext | None

    @property
    def user_id(self) -> str:
        """Who this request acts as: the owner of what it writes."""
        return self.user.canonical_id if self.user else ANONYMOUS_ID

    @property
    def requester(self) -> str | None:
        """The signed-in user's canonical id; None for an anonymous request."""
        return self.user.canonical_id if self.user else None

    async def bucket(self, fresh: bool = False) -> BucketRecord:
        """The endpoint's bucket, if this request's operation is allowed on it
        (NoSuchBucket / AccessDenied otherwise; gateway/access.py)."""
        record = await self.objects.bucket(self.endpoint.bucket, fresh)
        expected = self.headers.get("x-amz-expected-bucket-owner")
        if expected is not None and expected.strip() != record.owner:
            raise S3Error("AccessDenied")  # S3's answer when the owner is not the one named
        access.check_bucket(record, self.requester, self.endpoint.operation)
        return record

    async def readable_version(self, bucket: BucketRecord, key: str,
                               version_id: str | None, permission: str | None = None,
                               inline: dict[int, bytes] | None = None,
                               ahead: ReadAhead | None = None) -> ObjectManifest:
        """The version asked for, if this request may do its operation to it. A missing
        one is AccessDenied rather than 404 to whoever may not list the bucket, as S3
        answers (a 404 would tell them the key is absent). `inline` collects a small
        object's fragments while its version is looked up (a GET), `ahead` opens the
        first reads of a ranged GET along."""
        try:
            manifest = await self.objects.version(bucket, key, version_id, inline, ahead)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchVersion") and not access.bucket_allows(
                    bucket, self.requester, access.READ):
                raise S3Error("AccessDenied") from exc
            raise
        self.check_object(bucket, manifest, permission)
        return manifest

    def check_object(self, bucket: BucketRecord, manifest: ObjectManifest,
                     permission: str | None = None) -> None:
        """AccessDenied unless this request may do its operation to `manifest`."""
        needed = permission or access.OBJECT_PERMISSIONS.get(self.endpoint.operation,
                                                             access.READ)
        access.check_object(bucket, manifest, self.requester, needed)

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
