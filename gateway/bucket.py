"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, location."""

from __future__ import annotations

import base64

from starlette.responses import Response

from gateway import access, acl_grants
from gateway.acl import ACLS_DISABLED, OWNERSHIP, bucket_ownership, header_acl
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.query import int_in_range
from gateway.xml import document, iso8601, parse

XML = "application/xml"


MAX_BUCKETS = 10_000


def _max_buckets(raw: str | None) -> int:
    if raw is None:
        return MAX_BUCKETS
    return int_in_range(raw, 1, MAX_BUCKETS, "max-buckets",
                        "Argument max-buckets must be an integer between 1 and 10000.")


def _token_name(token: str) -> str:
    """The bucket name a continuation token resumes after (opaque to clients)."""
    try:
        return base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                      extra={"ArgumentName": "continuation-token",
                             "ArgumentValue": token}) from exc


def bucket_page(names: list[str], prefix: str, after: str, limit: int
                ) -> tuple[list[str], str | None]:
    """(names of one page, the name the next page starts after or None), by name."""
    chosen = sorted(n for n in names if n.startswith(prefix) and n > after)
    page = chosen[:limit]
    return page, page[-1] if len(chosen) > limit else None


async def list_buckets(ctx: RequestContext) -> Response:
    """Pages by name when asked to (max-buckets, continuation-token); S3 says a page is
    the last by leaving out ContinuationToken, there is no IsTruncated. bucket-region is
    ignored: every bucket is in the gateway's region."""
    limit = _max_buckets(ctx.endpoint.param("max-buckets"))
    token = ctx.endpoint.param("continuation-token")
    after = _token_name(token) if token else ""
    prefix = ctx.endpoint.param("prefix")
    # An anonymous request owns no bucket: it lists none.
    records = ({} if ctx.user is None else
               {r.name: r for r in await ctx.objects.list_buckets(ctx.user_id)})
    page, last = bucket_page(list(records), prefix or "", after, limit)
    region = ctx.config.gateway.region
    next_token = base64.urlsafe_b64encode(last.encode()).decode() if last else None
    body = document("ListAllMyBucketsResult", [
        ("Owner", [("ID", ctx.user_id),
                   ("DisplayName", (ctx.user.display_name if ctx.user else "") or ctx.user_id)]),
        ("Buckets", [("Bucket", [("Name", name), ("CreationDate",
                                                  iso8601(records[name].created)),
                                 ("BucketRegion", region)])
                     for name in page]),
        ("ContinuationToken", next_token), ("Prefix", prefix),
    ])
    return Response(body, media_type=XML)


async def create_bucket(ctx: RequestContext) -> Response:
    raw = await ctx.read_small_body(64 * 1024)
    if raw.strip():
        root = parse(raw, expected_root="CreateBucketConfiguration")
        location = next((c.text for c in root.iter() if c.tag.endswith("LocationConstraint")),
                        None)
        region = ctx.config.gateway.region
        if location and location != region and not (region == "us-east-1" and location == "US"):
            raise S3Error("InvalidRequest",
                          f"The specified location-constraint {location!r} is not valid for "
                          f"this endpoint, whose region is {region!r}.")
    if ctx.user is None:
        raise S3Error("AccessDenied")
    grants = header_acl(ctx, ctx.user_id, None)
    ownership = bucket_ownership(ctx.headers)
    if ownership == ACLS_DISABLED and grants is not None and acl_grants.is_public(grants):
        raise S3Error("InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set "
                      "with ObjectOwnership's BucketOwnerEnforced setting")
    try:
        record = await ctx.objects.create_bucket(ctx.endpoint.bucket, ctx.user_id)
        # Settings follow the record: a crash in between leaves the bucket private (and
        # ACLs enabled), never more open than asked.
        if ownership is not None:
            await ctx.objects.buckets.set_setting(record, OWNERSHIP, ownership)
        if grants is not None:
            await ctx.objects.buckets.set_setting(record, access.BUCKET_ACL, grants)
    except S3Error as exc:
        # us-east-1 answers 200 to its owner re-creating a bucket (and changes nothing);
        # every other region answers BucketAlreadyOwnedByYou.
        if exc.code != "BucketAlreadyOwnedByYou" or ctx.config.gateway.region != "us-east-1":
            raise
    return Response(status_code=200, headers={"Location": f"/{ctx.endpoint.bucket}"})


async def head_bucket(ctx: RequestContext) -> Response:
    await ctx.bucket()
    return Response(status_code=200,
                    headers={"x-amz-bucket-region": ctx.config.gateway.region})


async def delete_bucket(ctx: RequestContext) -> Response:
    record = await ctx.bucket()
    await ctx.objects.delete_bucket(record)
    return Response(status_code=204)


async def get_bucket_location(ctx: RequestContext) -> Response:
    await ctx.bucket()
    region = ctx.config.gateway.region
    text = "" if region == "us-east-1" else region
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            + text.encode() + b"</LocationConstraint>")
    return Response(body, media_type=XML)

