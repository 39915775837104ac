"""The gateway ASGI app: one pipeline from request to S3 response.

route -> authenticate once -> build a RequestContext -> dispatch to the operation's
handler -> render any S3Error as XML. Handlers never see the Authorization header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import (
    acl,
    attributes,
    bucket,
    copy,
    cors,
    delete,
    get,
    listing,
    multipart,
    put,
    tagging,
    versioning,
    versions,
)
from gateway.auth.canonical import headers_from_asgi
from gateway.auth.sigv4 import authenticate
from gateway.catch_all import EveryRequest
from gateway.context import RequestContext
from gateway.drain import DrainUnreadBody
from gateway.errors import S3Error
from gateway.map_metrics import map_gauges
from gateway.metrics import METRICS_PATH, instrument, serve_metrics
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.cluster import Cluster
from gateway.objects.layer import ObjectLayer
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from gateway.router import route
from gateway.unsupported import refuse_unsupported
from gateway.xml import error_document
from shardgate.collector import settle_after_startup
from shardgate.config import ClusterConfig
from shardgate.fault_routes import fault_routes
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import read_progress
from shardgate.memory import keep_returning_free_memory
from shardgate.metrics import set_operation

log = logging.getLogger("shardgate.gateway")

Handler = Callable[[RequestContext], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": bucket.list_buckets,
    "CreateBucket": bucket.create_bucket,
    "HeadBucket": bucket.head_bucket,
    "DeleteBucket": bucket.delete_bucket,
    "GetBucketLocation": bucket.get_bucket_location,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "ListObjectsV2": listing.list_objects_v2,
    "ListObjects": listing.list_objects,
    "PutObject": put.put_object,
    "GetObject": get.get_object,
    "HeadObject": get.head_object,
    "DeleteObject": delete.delete_object,
    "DeleteObjects": delete.delete_objects,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "CopyObject": copy.copy_object,
    "UploadPartCopy": copy.upload_part_copy,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "ListObjectVersions": versions.list_object_versions,
    "PutObjectTagging": tagging.put_object_tagging,
    "GetObjectTagging": tagging.get_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "GetObjectAttributes": attributes.get_object_attributes,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "PutBucketCors": cors.put_bucket_cors,
    "GetBucketCors": cors.get_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
}

HEALTH_PATH = "/-/health"  # '-' cannot start a bucket name, so this never shadows one
READY_PATH = "/-/ready"
FAULTS_PATH = "/-/faults"  # only with SHARDGATE_FAULT_POINTS=1 (the fault suite)
SERVICE_PATHS = {HEALTH_PATH: "Health", READY_PATH: "Ready", METRICS_PATH: "Metrics",
                 FAULTS_PATH: "Faults"}


def _error_response(error: S3Error, request_id: str, method: str,
                    resource: str) -> Response:
    headers = {"x-amz-request-id": request_id, "x-amz-id-2": request_id, **error.headers}
    if method == "HEAD":
        return Response(status_code=error.status, headers=headers)
    extra = dict(error.extra)
    extra.setdefault("Resource", resource)
    return Response(error_document(error.code, error.message, request_id, extra),
                    status_code=error.status, headers=headers, media_type="application/xml")


class GatewayApp:
    def __init__(self, config: ClusterConfig, cluster: Cluster | None = None,
                 settle_collector: bool = False) -> None:
        self.settle_collector = settle_collector
        self.config = config
        self.objects = ObjectLayer(config, cluster)
        self.ready = False  # set by the lifespan once the volume client has started

    def _secret(self, access_key: str) -> str | None:
        user = self.config.user_by_access_key(access_key)
        return user.secret_key if user else None

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "role": "gateway"})

    async def readiness(self, request: Request) -> Response:
        """200 between lifespan startup and shutdown. Losing the volumes' quorum does not
        make a gateway unready: it still answers a retryable 503 (docs/decisions.md)."""
        if self.ready:
            return JSONResponse({"status": "ready", "role": "gateway"})
        return JSONResponse({"status": "not ready", "role": "gateway"}, status_code=503)

    async def metrics(self, request: Request) -> Response:
        """Request counters, plus the cluster map's and the move's gauges (the progress is
        read from the map store; without it, the map gauges alone)."""
        view = self.objects.map_view
        if view is None:
            return await serve_metrics()
        progress = None
        if view.current.moving:
            with contextlib.suppress(MapUnavailable, TimeoutError):
                async with asyncio.timeout(1.0):
                    progress = await read_progress(view.store, self.config.map,
                                                   view.current.epoch)
        return await serve_metrics(map_gauges(view.current, progress))

    async def handle(self, request: Request) -> Response:
        request_id = uuid.uuid4().hex[:16].upper()
        method = request.method
        raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        headers = headers_from_asgi(request.scope["headers"])
        resource = raw_path
        endpoint = None
        try:
            endpoint = route(method, raw_path, raw_query, headers.get("host", ""), "",
                             headers)
            set_operation(request.scope, endpoint.operation)
            if endpoint.operation == "PreflightCors":
                return await self._preflight(endpoint.bucket, headers, request_id)
            gw = self.config.gateway
            auth = authenticate(method, raw_path, raw_query, headers, self._secret, gw.region,
                                datetime.now(UTC), gw.clock_skew_seconds)
            # No signature: an anonymous request, which gets what ACLs grant AllUsers.
            user = None if auth is None else self.config.user_by_access_key(auth.access_key)
            assert auth is None or user is not None  # authenticate() found its secret
            refuse_unsupported(endpoint.operation, headers)
            ctx = RequestContext(request, endpoint, headers, request_id, self.objects, user,
                                 auth)
            response = await HANDLERS[endpoint.operation](ctx)
        except S3Error as exc:
            response = _error_response(exc, request_id, method, resource)
        except (VolumeUnavailable, VolumeRejected) as exc:
            log.warning("request %s: %s", request_id, exc)
            response = _error_response(S3Error("ServiceUnavailable"), request_id, method,
                                       resource)
        except ClientDisconnect:
            log.info("request %s: client disconnected", request_id)
            response = Response(status_code=400)
        except Exception:
            log.exception("request %s failed", request_id)
            response = _error_response(S3Error("InternalError"), request_id, method, resource)
        if endpoint is not None and endpoint.bucket and "origin" in headers:
            try:
                response.headers.update(cors.headers_for(
                    await self._cached_bucket(endpoint.bucket), method, headers))
            except Exception:  # the answer stands without CORS headers
                log.exception("request %s: CORS headers", request_id)
        response.headers["x-amz-request-id"] = request_id
        response.headers.setdefault("x-amz-id-2", request_id)
        response.headers["Server"] = "shardgate"
        return response

    async def _cached_bucket(self, name: str) -> BucketRecord | None:
        """The bucket's record for its CORS rules; None when it cannot be read."""
        try:
            return await self.objects.buckets.get(name)
        except (S3Error, VolumeUnavailable, VolumeRejected):
            return None

    async def _preflight(self, bucket: str, headers: dict[str, str],
                         request_id: str) -> Response:
        try:
            record = await self.objects.buckets.get(bucket)
            if record is None:
                raise S3Error("NoSuchBucket", extra={"BucketName": bucket})
            response = cors.preflight(record, headers)
        except S3Error as exc:
            response = _error_response(exc, request_id, "OPTIONS", f"/{bucket}")
        except (VolumeUnavailable, VolumeRejected):
            response = _error_response(S3Error("ServiceUnavailable"), request_id, "OPTIONS",
                                       f"/{bucket}")
        response.headers["x-amz-request-id"] = request_id
        response.headers.setdefault("x-amz-id-2", request_id)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.objects.start()
        returning = asyncio.create_task(keep_returning_free_memory())
        if self.settle_collector:
            settle_after_startup()
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            returning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await returning
            await self.objects.close()


def create_app(config: ClusterConfig, cluster: Cluster | None = None,
               settle_collector: bool = False) -> Callable[..., Awaitable[None]]:
    """The gateway as a pure ASGI app (the serving layer is swappable).

    `settle_collector`: once started, freeze the process's objects and tune its garbage
    collector (shardgate/collector.py): for a server process, not for a test that builds
    apps inside its own interpreter.

    Outermost first: request metrics (so every answer counts, SlowDown included), the
    body idle timeout (it also stops the drain waiting on a silent client), the drain of
    unread bodies (a SlowDown answer included), the concurrency limit (health, readiness
    and metrics bypass it).
    """
    from gateway.body_idle import BodyIdleTimeout
    from gateway.limits import ConcurrencyLimit

    gateway = GatewayApp(config, cluster, settle_collector)
    app = Starlette(routes=[Route(HEALTH_PATH, gateway.health, methods=["GET"]),
                            Route(READY_PATH, gateway.readiness, methods=["GET"]),
                            Route(METRICS_PATH, gateway.metrics, methods=["GET"]),
                            *fault_routes(FAULTS_PATH), EveryRequest(gateway.handle)],
                    lifespan=gateway.lifespan)
    gw = config.gateway
    limited = ConcurrencyLimit(app, gw.max_concurrent_requests, gw.max_queued_requests,
                               gw.queue_wait_seconds, bypass=tuple(SERVICE_PATHS))
    return instrument(BodyIdleTimeout(DrainUnreadBody(limited), gw.body_idle_timeout_seconds),
                      SERVICE_PATHS)
