"""Bucket versioning: Get/PutBucketVersioning (Enabled, Suspended; never back to unset)."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.xml import document

XML = "application/xml"


async def get_bucket_versioning(ctx: RequestContext) -> Response:
    await ctx.bucket()
    return Response(document("VersioningConfiguration", []), media_type=XML)


async def put_bucket_versioning(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "Bucket versioning is not implemented yet.")
