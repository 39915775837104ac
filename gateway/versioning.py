"""Bucket versioning, the S3 side: Get/PutBucketVersioning and the version headers.

S3 sends `x-amz-version-id` on PUT, copy and Complete only while versioning is Enabled;
on GET, HEAD and DELETE for any version of a bucket that was ever versioned ("null" for a
null version); never in a never-versioned bucket. A bucket goes Enabled <-> Suspended,
never back to unversioned.

A new state is answered only after every cached copy of the old one has expired
(`[gateway] bucket_cache_seconds`): a client that enables versioning and writes at once
must not have that write taken for an unversioned one by a gateway that still caches the
old state, which would replace the null version the client meant to keep.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.versions import ENABLED, SUSPENDED, versioning_state
from gateway.xml import child_text, document, parse
from shardgate.manifest import ObjectManifest

XML = "application/xml"


def version_header(bucket: BucketRecord, public_id: str) -> dict[str, str]:
    """`x-amz-version-id` for GET, HEAD and DELETE: in a bucket that was ever versioned."""
    return {"x-amz-version-id": public_id} if versioning_state(bucket) else {}


def object_version_header(bucket: BucketRecord, manifest: ObjectManifest) -> dict[str, str]:
    return version_header(bucket, manifest.public_version_id)


def write_version_header(bucket: BucketRecord, manifest: ObjectManifest) -> dict[str, str]:
    """`x-amz-version-id` for PUT, copy and Complete: only while versioning is Enabled."""
    if versioning_state(bucket) != ENABLED:
        return {}
    return {"x-amz-version-id": manifest.public_version_id}


def marker_headers(bucket: BucketRecord, marker: ObjectManifest) -> dict[str, str]:
    """What a plain DELETE answers: the delete marker it wrote, in a versioned bucket."""
    if not marker.delete_marker:
        return {}
    return {"x-amz-delete-marker": "true", **object_version_header(bucket, marker)}


async def get_bucket_versioning(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket(fresh=True)
    state = versioning_state(bucket)
    return Response(document("VersioningConfiguration", [("Status", state)] if state else []),
                    media_type=XML)


async def put_bucket_versioning(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    root = parse(await ctx.read_small_body(64 * 1024),
                 expected_root="VersioningConfiguration")
    status = child_text(root, "Status")
    mfa_delete = child_text(root, "MfaDelete")
    if status not in (ENABLED, SUSPENDED):
        raise S3Error("MalformedXML", "Versioning Status must be Enabled or Suspended.")
    if mfa_delete not in (None, "Disabled"):
        raise S3Error("NotImplemented", "MFA delete is not implemented.")
    await ctx.objects.set_versioning(bucket, status)
    # Every gateway's cached copy of the old state has expired once this answers.
    await asyncio.sleep(ctx.config.gateway.bucket_cache_seconds)
    return Response(status_code=200)
