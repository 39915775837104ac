"""Who may do what: each operation's permission, checked against bucket and object ACLs.

The bucket's owner may do anything in it, to every object in it (shardgate has no bucket
policies, so this is how an owner keeps control of objects others wrote into a
public-read-write bucket). Anyone else, signed-in or anonymous, gets what the ACLs grant:

- a bucket's READ lists it (objects, versions, uploads) and answers HEAD;
- a bucket's WRITE creates, overwrites and deletes objects in it, multipart included;
- READ_ACP and WRITE_ACP read and replace an ACL (the bucket's, or an object's);
- an object's READ reads it (GET, HEAD, attributes, and as a copy source).

An object's owner (its writer) may do anything to it. Every other bucket operation
(versioning, tagging, deletion, ...) is for the bucket's owner alone. A denial is 403
AccessDenied, as S3 answers.
"""

from __future__ import annotations

from gateway import acl_grants
from gateway.acl_grants import READ, READ_ACP, WRITE, WRITE_ACP
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from shardgate.manifest import ObjectManifest

BUCKET_ACL = "acl"  # the bucket setting that holds its grants

# Operations a bucket ACL can open to others: the permission each needs on the bucket.
BUCKET_PERMISSIONS = {
    "ListObjects": READ, "ListObjectsV2": READ, "ListObjectVersions": READ,
    "ListMultipartUploads": READ, "HeadBucket": READ,
    "PutObject": WRITE, "DeleteObject": WRITE, "DeleteObjects": WRITE,
    "CreateMultipartUpload": WRITE, "UploadPart": WRITE, "UploadPartCopy": WRITE,
    "CompleteMultipartUpload": WRITE, "AbortMultipartUpload": WRITE, "ListParts": WRITE,
    "CopyObject": WRITE,
    "GetBucketAcl": READ_ACP, "PutBucketAcl": WRITE_ACP,
}

# Operations on one object: the permission each needs on the object's own ACL.
OBJECT_PERMISSIONS = {
    "GetObject": READ, "HeadObject": READ, "GetObjectAttributes": READ,
    "GetObjectAcl": READ_ACP, "PutObjectAcl": WRITE_ACP,
}


def bucket_grants(bucket: BucketRecord) -> list[acl_grants.Grant] | None:
    return acl_grants.as_stored(bucket.setting(BUCKET_ACL))


def bucket_allows(bucket: BucketRecord, user_id: str | None, permission: str) -> bool:
    if user_id is not None and user_id == bucket.owner:
        return True
    return acl_grants.allows(bucket_grants(bucket), bucket.owner, user_id, permission)


def check_bucket(bucket: BucketRecord, user_id: str | None, operation: str) -> None:
    """AccessDenied unless `user_id` (None: anonymous) may run `operation` on `bucket`.
    Object operations pass here; their object's ACL is checked once it is read."""
    if operation in OBJECT_PERMISSIONS or (user_id is not None and user_id == bucket.owner):
        return
    permission = BUCKET_PERMISSIONS.get(operation)
    if permission is None or not bucket_allows(bucket, user_id, permission):
        raise S3Error("AccessDenied")


def object_allows(bucket: BucketRecord, manifest: ObjectManifest,
                    user_id: str | None, permission: str = READ) -> bool:
    if user_id is not None and user_id in (bucket.owner, manifest.owner):
        return True
    return acl_grants.allows(acl_grants.as_stored(manifest.acl), manifest.owner, user_id,
                             permission)


def check_object(bucket: BucketRecord, manifest: ObjectManifest, user_id: str | None,
                 permission: str = READ) -> None:
    """AccessDenied unless `user_id` holds `permission` on the object (its owner, the
    bucket's owner, or a grant)."""
    if not object_allows(bucket, manifest, user_id, permission):
        raise S3Error("AccessDenied")
