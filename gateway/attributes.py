"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size."""

from __future__ import annotations

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.get import uploaded_in_parts
from gateway.versioning import object_version_header
from gateway.xml import document, http_date
from shardgate.manifest import ObjectManifest

XML = "application/xml"
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def requested_attributes(header: str | None) -> set[str]:
    """The names in x-amz-object-attributes; S3 refuses the request rather than
    answering with less than was asked."""
    names = {name.strip() for name in (header or "").split(",") if name.strip()}
    if not names:
        raise S3Error("InvalidArgument", "The x-amz-object-attributes header specifying the "
                                         "attributes to be retrieved is either missing or "
                                         "empty.",
                      extra={"ArgumentName": "x-amz-object-attributes"})
    unknown = sorted(names - set(ATTRIBUTES))
    if unknown:
        raise S3Error("InvalidArgument", "Invalid attribute name specified.",
                      extra={"ArgumentName": "x-amz-object-attributes",
                             "ArgumentValue": unknown[0]})
    return names


def _non_negative(ctx: RequestContext, header: str, default: int) -> int:
    raw = ctx.headers.get(header)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise S3Error("InvalidArgument", f"{header} must be a non-negative integer.",
                      extra={"ArgumentName": header, "ArgumentValue": raw})
    return value


def _checksum(manifest: ObjectManifest) -> list[tuple[str, object]] | None:
    if not manifest.checksums:
        return None
    fields: list[tuple[str, object]] = [(f"Checksum{alg}", value)
                                        for alg, value in manifest.checksums.items()]
    if manifest.checksum_type:
        fields.append(("ChecksumType", manifest.checksum_type))
    return fields


def object_parts(manifest: ObjectManifest, marker: int, max_parts: int
                 ) -> list[tuple[str, object]]:
    """One page of the parts after `marker`, as ListParts pages them. S3 lists the parts
    only of an object with a checksum, each with its checksum in the object's algorithm
    (the one a client can check the object's against)."""
    after = [p for p in manifest.parts if p.number > marker] if manifest.checksums else []
    page = after[:max_parts]
    fields: list[tuple[str, object]] = [
        ("PartsCount", len(manifest.parts)), ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1].number if page else marker),
        ("MaxParts", max_parts), ("IsTruncated", len(after) > len(page))]
    for part in page:
        entry: list[tuple[str, object]] = [("PartNumber", part.number), ("Size", part.size)]
        entry.extend((f"Checksum{alg}", value) for alg, value in part.checksums.items()
                     if alg in manifest.checksums)
        fields.append(("Part", entry))
    return fields


def render(manifest: ObjectManifest, names: set[str], marker: int, max_parts: int
           ) -> bytes:
    """The GetObjectAttributesResponse document, elements in the schema's order."""
    fields: list[tuple[str, object]] = []
    if "ETag" in names:
        fields.append(("ETag", manifest.etag))
    if "Checksum" in names:
        fields.append(("Checksum", _checksum(manifest)))
    if "ObjectParts" in names and uploaded_in_parts(manifest):
        fields.append(("ObjectParts", object_parts(manifest, marker, max_parts)))
    if "StorageClass" in names:
        fields.append(("StorageClass",
                       manifest.headers.get("x-amz-storage-class", "STANDARD")))
    if "ObjectSize" in names:
        fields.append(("ObjectSize", manifest.size))
    return document("GetObjectAttributesResponse", fields)


async def get_object_attributes(ctx: RequestContext) -> Response:
    names = requested_attributes(ctx.headers.get("x-amz-object-attributes"))
    max_parts = min(_non_negative(ctx, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
    marker = _non_negative(ctx, "x-amz-part-number-marker", 0)
    bucket = await ctx.bucket()
    manifest = await _version(ctx, ctx.endpoint.param("versionId"))
    return Response(render(manifest, names, marker, max_parts), media_type=XML,
                    headers={"Last-Modified": http_date(manifest.last_modified),
                             **object_version_header(bucket, manifest)})


async def _version(ctx: RequestContext, version: str | None) -> ObjectManifest:
    """The version asked for (the current one without ?versionId); a delete marker is
    405, as for GET."""
    if version == "":
        raise S3Error("InvalidArgument", "Version id cannot be the empty string",
                      extra={"ArgumentName": "versionId", "ArgumentValue": ""})
    manifest = await ctx.readable_version(await ctx.bucket(), ctx.endpoint.key, version)
    if manifest.deleted:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return manifest
