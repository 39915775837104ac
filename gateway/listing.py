"""ListObjectsV2 and ListObjects (v1): S3 pages over the merged volume listings."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.list_merge import ListPage
from gateway.xml import iso8601, rows_document, text

XML = "application/xml"
MAX_KEYS = 1000


def max_keys_of(ctx: RequestContext) -> int:
    """?max-keys, at most 1000 (ListObjects, ListObjectsV2, ListObjectVersions)."""
    raw = ctx.endpoint.param("max-keys", str(MAX_KEYS))
    try:
        value = int(raw or MAX_KEYS)
    except ValueError as exc:
        raise S3Error("InvalidArgument", "max-keys must be an integer.") from exc
    if value < 0:
        raise S3Error("InvalidArgument", "max-keys must not be negative.")
    return min(value, MAX_KEYS)


def url_encoder(encoding: str | None) -> Callable[[str], str]:
    """How a listing writes keys for `encoding-type` (only "url" exists): XML 1.0 cannot
    carry every character a key may hold."""
    if encoding is None:
        return lambda s: s
    if encoding != "url":
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
    return lambda s: quote(s, safe="/")


def _encoder(ctx: RequestContext) -> Callable[[str], str]:
    return url_encoder(ctx.endpoint.param("encoding-type"))


async def _page(ctx: RequestContext, bucket: BucketRecord, prefix: str, delimiter: str,
                after: str, max_keys: int) -> ListPage:
    """max-keys=0 asks for nothing: S3 answers an empty, untruncated page."""
    if max_keys == 0:
        return ListPage()
    return await ctx.objects.list(bucket, prefix, delimiter, after, max_keys)


def _contents(page: ListPage, enc: Callable[[str], str],
              owner_name: Callable[[str], str] | None) -> list[str]:
    """The page's Contents and CommonPrefixes elements, rendered as text (the rows of
    `rows_document`)."""
    out = []
    for item in page.keys:
        owner = "" if owner_name is None else (
            f"<Owner><ID>{text(item.owner)}</ID>"
            f"<DisplayName>{text(owner_name(item.owner))}</DisplayName></Owner>")
        out.append(f"<Contents><Key>{text(enc(item.key))}</Key>"
                   f"<LastModified>{iso8601(item.last_modified)}</LastModified>"
                   f"<ETag>\"{text(item.etag)}\"</ETag><Size>{item.size}</Size>{owner}"
                   "<StorageClass>STANDARD</StorageClass></Contents>")
    out.extend(f"<CommonPrefixes><Prefix>{text(enc(p))}</Prefix></CommonPrefixes>"
               for p in page.prefixes)
    return out


async def list_objects_v2(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    ep = ctx.endpoint
    prefix, delimiter = ep.param("prefix", "") or "", ep.param("delimiter", "") or ""
    start_after = ep.param("start-after", "") or ""
    token = ep.param("continuation-token")
    after = start_after
    if token is not None:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect") \
                from exc
        after = max(after, start_after)
    max_keys = max_keys_of(ctx)
    enc = _encoder(ctx)
    page = await _page(ctx, bucket, prefix, delimiter, after, max_keys)
    fields: list[tuple[str, object]] = [
        ("Name", bucket.name), ("Prefix", enc(prefix)),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("MaxKeys", max_keys), ("KeyCount", len(page.keys) + len(page.prefixes)),
        ("IsTruncated", page.truncated),
        ("EncodingType", ep.param("encoding-type")),
        ("ContinuationToken", token),
        ("StartAfter", enc(start_after) if start_after else None),
    ]
    if page.truncated:
        fields.append(("NextContinuationToken",
                       base64.urlsafe_b64encode(page.last.encode()).decode()))
    rows = _contents(page, enc,
                     ctx.config.display_name if ep.param("fetch-owner") == "true" else None)
    return Response(rows_document("ListBucketResult", fields, rows), media_type=XML)


async def list_objects(ctx: RequestContext) -> Response:
    """v1 with encoding-type=url encodes Delimiter, Marker, NextMarker and the keys and
    common prefixes but not the top-level Prefix, which SDKs do not decode for v1."""
    bucket = await ctx.bucket()
    ep = ctx.endpoint
    prefix, delimiter = ep.param("prefix", "") or "", ep.param("delimiter", "") or ""
    marker = ep.param("marker", "") or ""
    max_keys = max_keys_of(ctx)
    enc = _encoder(ctx)
    page = await _page(ctx, bucket, prefix, delimiter, marker, max_keys)
    fields: list[tuple[str, object]] = [
        ("Name", bucket.name), ("Prefix", prefix), ("Marker", enc(marker)),
        ("Delimiter", enc(delimiter) if delimiter else None),
        ("MaxKeys", max_keys), ("IsTruncated", page.truncated),
        ("EncodingType", ep.param("encoding-type")),
    ]
    if page.truncated and delimiter:
        fields.append(("NextMarker", enc(page.last)))
    rows = _contents(page, enc, ctx.config.display_name)
    return Response(rows_document("ListBucketResult", fields, rows), media_type=XML)
