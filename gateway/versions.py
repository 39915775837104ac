"""ListObjectVersions: every version and delete marker of a bucket, in key order."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error


async def list_object_versions(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "ListObjectVersions is not implemented yet.")
