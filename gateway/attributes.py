"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error


async def get_object_attributes(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "GetObjectAttributes is not implemented yet.")
