"""Object and bucket tagging: Put/Get/DeleteObjectTagging and Put/Get/DeleteBucketTagging."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error


async def not_yet(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "Tagging is not implemented yet.")


put_object_tagging = get_object_tagging = delete_object_tagging = not_yet
put_bucket_tagging = get_bucket_tagging = delete_bucket_tagging = not_yet
