"""ACL grants: canned ACLs, x-amz-grant-* headers and AccessControlPolicy documents.

A grant is stored as a plain dict, `{"type": "CanonicalUser", "id": ID, "permission": P}`
or `{"type": "Group", "uri": URI, "permission": P}`, so it travels in a manifest, an
in-place attribute or a bucket setting unchanged. An e-mail grantee is resolved to its
user's canonical id when the ACL is set, as S3 does (GET ?acl shows a CanonicalUser).
No ACL stored means the default: the owner's FULL_CONTROL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gateway.errors import S3Error

Grant = dict[str, str]
# canonical id of a user, or None when no user has it
UserLookup = Callable[[str], str | None]

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)

READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL = (
    "READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)

# x-amz-grant-* header -> the permission it grants, in the order S3 lists them.
GRANT_HEADERS = {
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
    "x-amz-grant-full-control": FULL_CONTROL,
}

CANNED_ACLS = ("private", "public-read", "public-read-write", "authenticated-read",
               "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control",
               "log-delivery-write")


def user_grant(user_id: str, permission: str) -> Grant:
    return {"type": "CanonicalUser", "id": user_id, "permission": permission}


def group_grant(uri: str, permission: str) -> Grant:
    return {"type": "Group", "uri": uri, "permission": permission}


def owner_only(owner: str) -> list[Grant]:
    """The ACL every bucket and object starts with."""
    return [user_grant(owner, FULL_CONTROL)]


def canned(name: str, owner: str, bucket_owner: str | None = None) -> list[Grant]:
    """The grants of a canned ACL (x-amz-acl). Group grants come before the owner's, the
    order GET ?acl shows them in. `bucket_owner` matters for the bucket-owner-* ACLs of
    an object."""
    name = name.strip().lower()
    grants: list[Grant]
    if name == "private":
        grants = []
    elif name == "public-read":
        grants = [group_grant(ALL_USERS, READ)]
    elif name == "public-read-write":
        grants = [group_grant(ALL_USERS, READ), group_grant(ALL_USERS, WRITE)]
    elif name == "authenticated-read":
        grants = [group_grant(AUTHENTICATED_USERS, READ)]
    elif name == "log-delivery-write":
        grants = [group_grant(LOG_DELIVERY, WRITE), group_grant(LOG_DELIVERY, READ_ACP)]
    elif name == "aws-exec-read":
        grants = []
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        permission = READ if name == "bucket-owner-read" else FULL_CONTROL
        grants = ([user_grant(bucket_owner, permission)]
                  if bucket_owner and bucket_owner != owner else [])
    else:
        raise S3Error("InvalidArgument", f"The canned ACL {name!r} is not valid.",
                      extra={"ArgumentName": "x-amz-acl", "ArgumentValue": name})
    return grants + owner_only(owner)


def _grantee(kind: str, value: str, users: UserLookup, emails: UserLookup) -> Grant:
    """A grantee given as id=, uri= or emailAddress=, resolved and checked."""
    kind = kind.strip().lower()
    value = value.strip().strip('"')
    if kind == "id":
        if users(value) is None:
            raise S3Error("InvalidArgument", "Invalid id", extra={
                "ArgumentName": "CanonicalUser/ID", "ArgumentValue": value})
        return {"type": "CanonicalUser", "id": value}
    if kind == "uri":
        if value not in GROUPS:
            raise S3Error("InvalidArgument", "Invalid group uri", extra={
                "ArgumentName": "Group/URI", "ArgumentValue": value})
        return {"type": "Group", "uri": value}
    if kind == "emailaddress":
        found = emails(value)
        if found is None:
            raise S3Error("UnresolvableGrantByEmailAddress",
                          extra={"EmailAddress": value})
        return {"type": "CanonicalUser", "id": found}
    raise S3Error("InvalidArgument", f"Unknown grantee type {kind!r}.",
                  extra={"ArgumentName": "x-amz-grant", "ArgumentValue": kind})


def from_headers(headers: Mapping[str, str], owner: str, bucket_owner: str | None,
                 users: UserLookup, emails: UserLookup) -> list[Grant] | None:
    """The ACL a request sets by header: x-amz-acl or x-amz-grant-*, never both (S3
    answers InvalidRequest); None when it sets none."""
    acl = headers.get("x-amz-acl", "").strip()
    sent = [name for name in GRANT_HEADERS if headers.get(name, "").strip()]
    if acl and sent:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is "
                                        "not allowed")
    if acl:
        return canned(acl, owner, bucket_owner)
    if not sent:
        return None
    grants: list[Grant] = []
    for name in sent:
        for item in headers[name].split(","):
            kind, eq, value = item.partition("=")
            if not eq:
                raise S3Error("InvalidArgument", f"Malformed grant {item.strip()!r}.",
                              extra={"ArgumentName": name, "ArgumentValue": headers[name]})
            grants.append({**_grantee(kind, value, users, emails),
                           "permission": GRANT_HEADERS[name]})
    return grants


def from_policy(grantees: Iterable[tuple[dict[str, str | None], str | None]],
                users: UserLookup, emails: UserLookup) -> list[Grant]:
    """Grants from the (grantee fields, permission) pairs of an AccessControlPolicy.
    Grantee fields are the XML's xsi:type, ID, URI and EmailAddress."""
    grants: list[Grant] = []
    for fields, permission in grantees:
        if permission not in PERMISSIONS:
            raise S3Error("MalformedACLError", "The XML you provided was not well-formed or "
                                                "did not validate against our published schema.")
        kind = (fields.get("type") or "").strip()
        if kind == "CanonicalUser" and fields.get("ID"):
            grantee = _grantee("id", fields["ID"] or "", users, emails)
        elif kind == "Group" and fields.get("URI"):
            grantee = _grantee("uri", fields["URI"] or "", users, emails)
        elif kind == "AmazonCustomerByEmail" and fields.get("EmailAddress"):
            grantee = _grantee("emailAddress", fields["EmailAddress"] or "", users, emails)
        else:
            raise S3Error("MalformedACLError", "The XML you provided was not well-formed or "
                                                "did not validate against our published schema.")
        grants.append({**grantee, "permission": permission})
    return grants


def allows(grants: list[Grant] | None, owner: str, user_id: str | None,
           permission: str) -> bool:
    """Whether the ACL gives `permission` to `user_id` (None: an anonymous request).

    The owner always may (S3's owner keeps READ_ACP and WRITE_ACP whatever the grants
    say; shardgate keeps every permission there, so an owner cannot lock themself out).
    FULL_CONTROL includes every other permission.
    """
    if user_id is not None and user_id == owner:
        return True
    for grant in grants or ():  # None (the default ACL) grants only the owner
        if grant["permission"] not in (permission, FULL_CONTROL):
            continue
        if grant["type"] == "CanonicalUser" and user_id is not None \
                and grant.get("id") == user_id:
            return True
        if grant["type"] == "Group" and (grant.get("uri") == ALL_USERS or (
                grant.get("uri") == AUTHENTICATED_USERS and user_id is not None)):
            return True
    return False


def display_order(grants: list[Grant]) -> list[Grant]:
    """Group grants first, then user grants, each in the order they were set."""
    return ([g for g in grants if g["type"] == "Group"]
            + [g for g in grants if g["type"] != "Group"])


def is_public(grants: list[Grant] | None) -> bool:
    """Whether the ACL grants anything to everyone or to every signed-in user."""
    return any(g["type"] == "Group" and g.get("uri") in (ALL_USERS, AUTHENTICATED_USERS)
               for g in grants or ())


def as_stored(value: Any) -> list[Grant] | None:
    """An ACL as read back from a manifest or attribute (lists of plain dicts)."""
    if value is None:
        return None
    return [dict(g) for g in value]
