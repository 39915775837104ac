"""CopyObject and UploadPartCopy: server-side copies streamed from the source's reader."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error


async def copy_object(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "CopyObject is not implemented yet.")


async def upload_part_copy(ctx: RequestContext) -> Response:
    raise S3Error("NotImplemented", "UploadPartCopy is not implemented yet.")
