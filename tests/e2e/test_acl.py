"""Owner-only ACLs through boto3: what GET ?acl shows, which PUT ?acl is accepted."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def owner_only(acl: dict) -> None:
    owner = acl["Owner"]["ID"]
    assert [(g["Grantee"]["Type"], g["Grantee"]["ID"], g["Permission"])
            for g in acl["Grants"]] == [("CanonicalUser", owner, "FULL_CONTROL")]


def test_get_acls_show_the_owner_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    bucket_acl = s3.get_bucket_acl(Bucket=bucket)
    owner_only(bucket_acl)
    assert bucket_acl["Owner"]["DisplayName"] == "alice"
    owner_only(s3.get_object_acl(Bucket=bucket, Key="k"))


def test_put_acls_accept_only_owner_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="k", ACL="bucket-owner-full-control")
    policy = s3.get_object_acl(Bucket=bucket, Key="k")
    s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={
        "Owner": policy["Owner"], "Grants": policy["Grants"]})
    for call in (lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read"),
                 lambda: s3.put_object_acl(Bucket=bucket, Key="k", ACL="public-read"),
                 lambda: s3.put_object_acl(Bucket=bucket, Key="k",
                                           GrantRead="uri=http://acs.amazonaws.com/"
                                                     "groups/global/AllUsers")):
        with pytest.raises(ClientError) as err:
            call()
        assert code(err.value) == "NotImplemented"
    owner_only(s3.get_object_acl(Bucket=bucket, Key="k"))
    with pytest.raises(ClientError) as err:
        s3.get_object_acl(Bucket=bucket, Key="absent")
    assert code(err.value) == "NoSuchKey"
