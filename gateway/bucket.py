"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, location."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.xml import document, iso8601, parse

XML = "application/xml"


async def list_buckets(ctx: RequestContext) -> Response:
    records = await ctx.objects.list_buckets(ctx.user_id)
    body = document("ListAllMyBucketsResult", [
        ("Owner", [("ID", ctx.user_id), ("DisplayName", ctx.user.display_name or ctx.user_id)]),
        ("Buckets", [("Bucket", [("Name", r.name), ("CreationDate", iso8601(r.created))])
                     for r in records]),
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
    await ctx.objects.create_bucket(ctx.endpoint.bucket, ctx.user_id)
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

