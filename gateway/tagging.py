"""Object and bucket tagging: Put/Get/DeleteObjectTagging and Put/Get/DeleteBucketTagging.

Tags given with a write (`x-amz-tagging` on PUT, copy and CreateMultipartUpload) are part
of the version; a later PutObjectTagging is an in-place change written on the quorum with
its own stamp (gateway/objects/attributes.py). S3's limits apply: 10 tags per object (50
per bucket), keys of 1 to 128 characters, values of up to 256, no key twice, none under
the reserved `aws:` prefix.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.xml import child_text, children, document, parse

XML = "application/xml"
MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidTag", message)


def checked_tags(pairs: list[tuple[str, str]], limit: int) -> dict[str, str]:
    """The pairs as a dict, or InvalidTag naming the broken rule."""
    if len(pairs) > limit:
        raise S3Error("InvalidTag",
                      f"Object tags cannot be greater than {limit}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_KEY:
            raise _invalid("The TagKey you have provided is invalid")
        if len(value) > MAX_VALUE:
            raise _invalid("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise _invalid("Your TagKey cannot be prefixed with aws:")
        if key in tags:
            raise _invalid("Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags


def header_tags(headers: dict[str, str]) -> dict[str, str]:
    """`x-amz-tagging` (URL-query encoded `k1=v1&k2=v2`) as tags; {} when absent."""
    raw = headers.get("x-amz-tagging")
    if raw is None or not raw.strip():
        return {}
    # "k" alone is the key k with an empty value, as S3 reads it.
    return checked_tags(parse_qsl(raw, keep_blank_values=True), MAX_OBJECT_TAGS)


def tags_of_document(body: bytes, limit: int) -> dict[str, str]:
    """`<Tagging><TagSet><Tag><Key/><Value/></Tag>...` as tags."""
    root = parse(body, expected_root="Tagging")
    sets = children(root, "TagSet")
    if len(sets) != 1:
        raise S3Error("MalformedXML")
    pairs = []
    for tag in children(sets[0], "Tag"):
        key, value = child_text(tag, "Key"), child_text(tag, "Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        pairs.append((key, value))
    return checked_tags(pairs, limit)


def tagging_document(tags: dict[str, str]) -> bytes:
    """The TagSet, sorted by key as S3 returns it."""
    return document("Tagging", [("TagSet", [("Tag", [("Key", k), ("Value", tags[k])])
                                            for k in sorted(tags)])])


async def put_object_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    tags = tags_of_document(await ctx.read_small_body(64 * 1024), MAX_OBJECT_TAGS)
    manifest = await ctx.objects.version(bucket, ctx.endpoint.key,
                                         ctx.endpoint.param("versionId"))
    await ctx.objects.set_tags(manifest, tags)
    return Response(status_code=200)


async def get_object_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    manifest = await ctx.objects.version(bucket, ctx.endpoint.key,
                                         ctx.endpoint.param("versionId"))
    return Response(tagging_document(manifest.tags), media_type=XML)


async def delete_object_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    manifest = await ctx.objects.version(bucket, ctx.endpoint.key,
                                         ctx.endpoint.param("versionId"))
    await ctx.objects.set_tags(manifest, {})
    return Response(status_code=204)


async def put_bucket_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    tags = tags_of_document(await ctx.read_small_body(64 * 1024), MAX_BUCKET_TAGS)
    await ctx.objects.set_bucket_tags(bucket, tags)
    return Response(status_code=204)


async def get_bucket_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    tags = await ctx.objects.bucket_tags(bucket)
    if not tags:
        raise S3Error("NoSuchTagSet", extra={"BucketName": bucket.name})
    return Response(tagging_document(tags), media_type=XML)


async def delete_bucket_tagging(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    await ctx.objects.set_bucket_tags(bucket, {})
    return Response(status_code=204)
