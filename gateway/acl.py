"""Get/PutBucketAcl and Get/PutObjectAcl for the one ACL shardgate has: owner-only.

Every bucket and object is private to its owner (FULL_CONTROL for the owner, nothing for
anyone else), so that is what GET ?acl answers, and PUT ?acl accepts exactly that: the
canned ACLs `private` and `bucket-owner-full-control`, or a policy that grants only the
owner FULL_CONTROL. Any other grant answers 501 NotImplemented rather than a silent 200
for access that would not be given.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.unsupported import OWNER_ONLY_ACLS
from gateway.xml import add_children, child_text, children, element, local, parse, render
from shardgate.manifest import ObjectManifest

XML = "application/xml"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("xsi", XSI)


def _owner_fields(ctx: RequestContext, owner: str) -> list[tuple[str, object]]:
    names = {u.canonical_id: u.display_name or u.canonical_id for u in ctx.config.users}
    return [("ID", owner), ("DisplayName", names.get(owner, owner))]


def owner_only_policy(ctx: RequestContext, owner: str) -> bytes:
    """The AccessControlPolicy document of an owner-only resource."""
    root = element("AccessControlPolicy", [("Owner", _owner_fields(ctx, owner))])
    grants = ET.SubElement(root, "AccessControlList")
    grant = ET.SubElement(grants, "Grant")
    grantee = ET.SubElement(grant, "Grantee", {f"{{{XSI}}}type": "CanonicalUser"})
    add_children(grantee, _owner_fields(ctx, owner))
    add_children(grant, [("Permission", "FULL_CONTROL")])
    return render(root)


async def _check_owner_only(ctx: RequestContext, owner: str) -> None:
    """Accept an ACL change that leaves the resource owner-only; 501 for anything else."""
    canned = ctx.headers.get("x-amz-acl", "").strip().lower()
    if canned and canned not in OWNER_ONLY_ACLS:
        raise S3Error("NotImplemented", f"The canned ACL {canned!r} is not implemented.",
                      extra={"Header": "x-amz-acl"})
    if any(name.startswith("x-amz-grant-") for name in ctx.headers):
        raise S3Error("NotImplemented", "ACL grants are not implemented.")
    body = await ctx.read_small_body(64 * 1024)
    if not body.strip():
        if not canned:
            raise S3Error("MissingSecurityHeader", "An ACL, as a header or a body, is "
                                                   "required.")
        return
    root = parse(body, expected_root="AccessControlPolicy")
    acl = next((c for c in root if local(c.tag) == "AccessControlList"), None)
    grants = children(acl, "Grant") if acl is not None else []
    for grant in grants:
        grantee = next((c for c in grant if local(c.tag) == "Grantee"), None)
        who = child_text(grantee, "ID") if grantee is not None else None
        if who != owner or child_text(grant, "Permission") != "FULL_CONTROL":
            raise S3Error("NotImplemented", "Grants to anyone but the owner are not "
                                            "implemented.")


async def get_bucket_acl(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    return Response(owner_only_policy(ctx, bucket.owner), media_type=XML)


async def put_bucket_acl(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    await _check_owner_only(ctx, bucket.owner)
    return Response(status_code=200)


async def get_object_acl(ctx: RequestContext) -> Response:
    manifest = await _object(ctx)
    return Response(owner_only_policy(ctx, manifest.owner), media_type=XML)


async def put_object_acl(ctx: RequestContext) -> Response:
    manifest = await _object(ctx)
    await _check_owner_only(ctx, manifest.owner)
    return Response(status_code=200)


async def _object(ctx: RequestContext) -> ObjectManifest:
    manifest = await ctx.objects.version(await ctx.bucket(), ctx.endpoint.key,
                                         ctx.endpoint.param("versionId"))
    if manifest.deleted:
        raise S3Error("MethodNotAllowed", headers={"x-amz-delete-marker": "true"})
    return manifest
