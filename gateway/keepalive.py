"""Slow copies answer 200 at once, keep the connection alive, and report the end in the body.

S3 starts the answer of a long CopyObject, UploadPartCopy or CompleteMultipartUpload with
200 and its headers, sends whitespace while it works, and ends with the result document
or, for a late failure, an `<Error>` document (botocore reads an `<Error>` inside a 200 and
retries). Clients give up on a silent connection long before a 5 GiB copy ends, so the
same is done here. A result ready within `[gateway] slow_answer_seconds` is answered as usual, with
its own status and headers; only a slow one is trickled (and then carries no
`x-amz-version-id` header: the version id is chosen at the end; docs/decisions.md).
CopyObject, UploadPartCopy and CompleteMultipartUpload answer this way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable

from starlette.responses import Response, StreamingResponse

from gateway.errors import S3Error
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from gateway.xml import XML_DECLARATION, error_document

WHITESPACE_EVERY = 5.0
log = logging.getLogger("shardgate.gateway.keepalive")


async def answer_when_done(work: Awaitable[Response], request_id: str, resource: str,
                           fast_answer: float) -> Response:
    """`work`'s response if it is ready within `fast_answer` seconds, else a 200 that
    trickles until it is."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=fast_answer)
    except BaseException:
        task.cancel()
        raise
    if done:
        return task.result()
    return StreamingResponse(_trickle(task, request_id, resource), status_code=200,
                             media_type="application/xml")


async def _trickle(task: asyncio.Future, request_id: str, resource: str
                   ) -> AsyncIterator[bytes]:
    try:
        yield XML_DECLARATION
        while True:
            done, _ = await asyncio.wait({task}, timeout=WHITESPACE_EVERY)
            if done:
                break
            yield b" "
        yield _late_body(task, request_id, resource).removeprefix(XML_DECLARATION)
    finally:
        if not task.done():  # the client went away: stop the copy (its stage is aborted)
            task.cancel()


def _late_body(task: asyncio.Future, request_id: str, resource: str) -> bytes:
    try:
        return bytes(task.result().body)
    except S3Error as exc:
        error = exc
    except (VolumeUnavailable, VolumeRejected) as exc:
        log.warning("request %s: %s", request_id, exc)
        error = S3Error("ServiceUnavailable")
    except Exception:
        log.exception("request %s failed", request_id)
        error = S3Error("InternalError")
    return error_document(error.code, error.message, request_id,
                          {**error.extra, "Resource": resource})
