"""Get/PutBucketAcl and Get/PutObjectAcl, and the ACL a create request sets by header.

A bucket's ACL is a bucket setting; an object's is written with the version and changed
in place like its tags (gateway/objects/attributes.py), so it is healed and resolved
newest-stamp-wins like any in-place change. What the grants allow is gateway/access.py's
concern. A bucket created with `x-amz-object-ownership: BucketOwnerEnforced` has ACLs
disabled, as in S3: only ACLs that grant nothing beyond the owner are accepted there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from xml.etree import ElementTree as ET

from starlette.responses import Response

from gateway import access, acl_grants
from gateway.acl_grants import Grant, UserLookup
from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.xml import add_children, child_text, children, element, local, parse, render
from shardgate.config import ClusterConfig
from shardgate.manifest import ObjectManifest

XML = "application/xml"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("xsi", XSI)

OWNERSHIP = "ownership"  # the bucket setting holding its object ownership
ACLS_DISABLED = "BucketOwnerEnforced"
OWNERSHIPS = ("ObjectWriter", ACLS_DISABLED)


def _user_ids(config: ClusterConfig) -> tuple[UserLookup, UserLookup]:
    """Lookups by canonical id and by e-mail, each to a canonical id or None."""
    ids = {u.canonical_id for u in config.users}
    emails = {u.email.lower(): u.canonical_id for u in config.users if u.email}
    return (lambda uid: uid if uid in ids else None,
            lambda email: emails.get(email.lower()))


def policy_document(ctx: RequestContext, owner: str, grants: list[Grant] | None) -> bytes:
    """The AccessControlPolicy document GET ?acl answers."""
    name = ctx.config.display_name
    root = element("AccessControlPolicy",
                   [("Owner", [("ID", owner), ("DisplayName", name(owner))])])
    listed = ET.SubElement(root, "AccessControlList")
    for grant in acl_grants.display_order(acl_grants.owner_only(owner) if grants is None
                                          else grants):
        node = ET.SubElement(listed, "Grant")
        grantee = ET.SubElement(node, "Grantee", {f"{{{XSI}}}type": grant["type"]})
        if grant["type"] == "Group":
            add_children(grantee, [("URI", grant["uri"])])
        else:
            add_children(grantee, [("ID", grant["id"]),
                                   ("DisplayName", name(grant["id"]))])
        add_children(node, [("Permission", grant["permission"])])
    return render(root)


def header_acl(ctx: RequestContext, owner: str, bucket: BucketRecord | None
               ) -> list[Grant] | None:
    """The ACL a create request (bucket, PUT, copy, multipart) sets by header; None when
    it sets none. `bucket` is the bucket an object goes into (None for CreateBucket)."""
    users, emails = _user_ids(ctx.config)
    grants = acl_grants.from_headers(ctx.headers, owner, bucket.owner if bucket else None,
                                     users, emails)
    if grants is not None and bucket is not None:
        _check_acls_allowed(bucket, owner, grants)
    return grants


def _check_acls_allowed(bucket: BucketRecord, owner: str, grants: list[Grant]) -> None:
    if bucket.setting(OWNERSHIP) != ACLS_DISABLED:
        return
    if any(g["type"] != "CanonicalUser" or g.get("id") not in (owner, bucket.owner)
           for g in grants):
        raise S3Error("AccessControlListNotSupported")


def bucket_ownership(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-amz-object-ownership", "").strip()
    if not value:
        return None
    if value not in OWNERSHIPS:
        raise S3Error("NotImplemented", f"Object ownership {value!r} is not implemented.",
                      extra={"Header": "x-amz-object-ownership"})
    return value


async def _requested(ctx: RequestContext, owner: str, bucket: BucketRecord,
                     object_acl: bool) -> list[Grant]:
    """The ACL a PUT ?acl asks for: by header or by an AccessControlPolicy body."""
    body = await ctx.read_small_body(64 * 1024)
    by_header = header_acl(ctx, owner, bucket if object_acl else None)
    if by_header is not None:
        if body.strip():
            raise S3Error("UnexpectedContent", "This request does not support content "
                                               "together with ACL headers.")
        grants = by_header
    elif not body.strip():
        raise S3Error("MissingSecurityHeader", "An ACL, as a header or a body, is required.")
    else:
        grants = _from_policy(ctx, body)
    _check_acls_allowed(bucket, owner, grants)
    return grants


def _from_policy(ctx: RequestContext, body: bytes) -> list[Grant]:
    root = parse(body, expected_root="AccessControlPolicy")
    listed = next((c for c in root if local(c.tag) == "AccessControlList"), None)
    pairs = []
    for grant in children(listed, "Grant") if listed is not None else []:
        grantee = next((c for c in grant if local(c.tag) == "Grantee"), None)
        if grantee is None:
            raise S3Error("MalformedACLError")
        kind = next((v for k, v in grantee.attrib.items() if local(k) == "type"), None)
        fields = {"type": kind, "ID": child_text(grantee, "ID"),
                  "URI": child_text(grantee, "URI"),
                  "EmailAddress": child_text(grantee, "EmailAddress")}
        pairs.append((fields, child_text(grant, "Permission")))
    users, emails = _user_ids(ctx.config)
    return acl_grants.from_policy(pairs, users, emails)


async def get_bucket_acl(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket(fresh=True)
    return Response(policy_document(ctx, bucket.owner, access.bucket_grants(bucket)),
                    media_type=XML)


async def put_bucket_acl(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    grants = await _requested(ctx, bucket.owner, bucket, object_acl=False)
    await ctx.objects.buckets.set_setting(bucket, access.BUCKET_ACL, grants)
    # Every gateway's cached copy of the old grants has expired once this answers, so a
    # revoked grant is revoked everywhere.
    await asyncio.sleep(ctx.config.gateway.bucket_cache_seconds)
    return Response(status_code=200)


async def get_object_acl(ctx: RequestContext) -> Response:
    manifest = await _object(ctx)
    return Response(policy_document(ctx, manifest.owner, acl_grants.as_stored(manifest.acl)),
                    media_type=XML, headers=_version_header(ctx, manifest))


async def put_object_acl(ctx: RequestContext) -> Response:
    manifest = await _object(ctx)
    bucket = await ctx.bucket()
    grants = await _requested(ctx, manifest.owner, bucket, object_acl=True)
    await ctx.objects.set_acl(manifest, grants)
    return Response(status_code=200, headers=_version_header(ctx, manifest))


def _version_header(ctx: RequestContext, manifest: ObjectManifest) -> dict[str, str]:
    if ctx.endpoint.param("versionId") is None:
        return {}
    return {"x-amz-version-id": manifest.public_version_id}


async def _object(ctx: RequestContext) -> ObjectManifest:
    bucket = await ctx.bucket()
    manifest = await ctx.readable_version(bucket, ctx.endpoint.key,
                                          ctx.endpoint.param("versionId"))
    if manifest.deleted:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return manifest
