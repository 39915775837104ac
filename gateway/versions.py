"""ListObjectVersions: every version and delete marker of a bucket, in key order.

max-keys counts versions, delete markers and common prefixes together; each key's
versions come newest first with IsLatest on its current one. With `encoding-type=url`
exactly the fields botocore decodes are encoded (KeyMarker, NextKeyMarker, Prefix,
Delimiter, Key, CommonPrefixes/Prefix), not VersionIdMarker.
"""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.listing import max_keys_of, url_encoder
from gateway.objects.version_merge import ListedVersion
from gateway.xml import document, iso8601

XML = "application/xml"


def _version_fields(item: ListedVersion, enc, owner_name: str) -> list[tuple[str, object]]:  # noqa: ANN001
    fields: list[tuple[str, object]] = [
        ("Key", enc(item.key)), ("VersionId", item.public_id), ("IsLatest", item.latest),
        ("LastModified", iso8601(item.last_modified))]
    if not item.delete_marker:
        fields += [("ETag", f'"{item.etag}"'), ("Size", item.size),
                   ("StorageClass", "STANDARD")]
    fields.append(("Owner", [("ID", item.owner), ("DisplayName", owner_name)]))
    return fields


async def list_object_versions(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    ep = ctx.endpoint
    prefix, delimiter = ep.param("prefix", "") or "", ep.param("delimiter", "") or ""
    key_marker = ep.param("key-marker", "") or ""
    version_marker = ep.param("version-id-marker", "") or ""
    if version_marker and not key_marker:
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without "
                                         "a key marker.")
    max_keys = max_keys_of(ctx)
    encoding = ep.param("encoding-type")
    enc = url_encoder(encoding)
    page = None
    if max_keys:
        page = await ctx.objects.list_versions(bucket, prefix, delimiter, key_marker,
                                               version_marker, max_keys)
    fields: list[tuple[str, object]] = [
        ("Name", bucket.name), ("Prefix", enc(prefix)), ("KeyMarker", enc(key_marker)),
        ("VersionIdMarker", version_marker), ("MaxKeys", max_keys)]
    if delimiter:
        fields.append(("Delimiter", enc(delimiter)))
    if encoding:
        fields.append(("EncodingType", encoding))
    truncated = page is not None and page.truncated
    fields.append(("IsTruncated", truncated))
    if truncated:
        fields += [("NextKeyMarker", enc(page.next_key)),
                   ("NextVersionIdMarker", page.next_version)]
    prefixes = []
    for item in page.entries if page is not None else []:
        if isinstance(item, str):
            prefixes.append(("CommonPrefixes", [("Prefix", enc(item))]))
        else:
            fields.append(("DeleteMarker" if item.delete_marker else "Version",
                           _version_fields(item, enc, ctx.config.display_name(item.owner))))
    return Response(document("ListVersionsResult", fields + prefixes), media_type=XML)
