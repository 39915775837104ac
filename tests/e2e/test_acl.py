"""ACLs through boto3: canned and explicit grants on buckets and objects, what they let
another user and an anonymous client do, and an ACL change that meets a dead volume."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import incarnation, placement, volume_json

pytestmark = pytest.mark.e2e

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def grants(acl: dict) -> list[tuple[str, str, str]]:
    return [(g["Grantee"]["Type"], g["Grantee"].get("ID") or g["Grantee"].get("URI"),
             g["Permission"]) for g in acl["Grants"]]


def denied(call, *args, **kwargs) -> None:
    with pytest.raises(ClientError) as err:
        call(*args, **kwargs)
    assert code(err.value) == "AccessDenied"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.fixture(scope="module")
def anon(cluster):
    return cluster.client_at(cluster.endpoint, "x", "y", signature_version=UNSIGNED)


def new_bucket(s3, **kwargs) -> str:
    name = f"acl-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, **kwargs)
    return name


def test_defaults_are_owner_only(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="k")):
        assert acl["Owner"] == {"ID": "alice-id", "DisplayName": "alice"}
        assert grants(acl) == [("CanonicalUser", "alice-id", "FULL_CONTROL")]


def test_canned_acls_round_trip(s3):
    name = new_bucket(s3, ACL="public-read-write")
    assert grants(s3.get_bucket_acl(Bucket=name)) == [
        ("Group", ALL_USERS, "READ"), ("Group", ALL_USERS, "WRITE"),
        ("CanonicalUser", "alice-id", "FULL_CONTROL")]
    s3.put_bucket_acl(Bucket=name, ACL="authenticated-read")
    assert grants(s3.get_bucket_acl(Bucket=name)) == [
        ("Group", AUTHENTICATED, "READ"), ("CanonicalUser", "alice-id", "FULL_CONTROL")]
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [
        ("Group", ALL_USERS, "READ"), ("CanonicalUser", "alice-id", "FULL_CONTROL")]
    s3.put_object_acl(Bucket=name, Key="k", ACL="private")
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [
        ("CanonicalUser", "alice-id", "FULL_CONTROL")]


def test_explicit_grants_by_header_and_body(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantRead="id=bob-id",
                  GrantWriteACP='emailAddress="bob@example.com"')
    assert grants(s3.get_object_acl(Bucket=bucket, Key="k")) == [
        ("CanonicalUser", "bob-id", "READ"), ("CanonicalUser", "bob-id", "WRITE_ACP")]
    policy = s3.get_bucket_acl(Bucket=bucket)
    policy["Grants"].append({"Grantee": {"Type": "AmazonCustomerByEmail",
                                         "EmailAddress": "bob@example.com"},
                             "Permission": "READ"})
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": policy["Owner"],
                                                          "Grants": policy["Grants"]})
    assert grants(s3.get_bucket_acl(Bucket=bucket)) == [
        ("CanonicalUser", "alice-id", "FULL_CONTROL"), ("CanonicalUser", "bob-id", "READ")]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, GrantRead="id=nobody-id")
    assert code(err.value) == "InvalidArgument"


def test_what_grants_let_another_user_do(s3, s3_bob, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    s3.put_object(Bucket=bucket, Key="shared", Body=b"s", GrantRead="id=bob-id")
    denied(s3_bob.list_objects_v2, Bucket=bucket)
    denied(s3_bob.get_object, Bucket=bucket, Key="private")
    denied(s3_bob.put_object, Bucket=bucket, Key="new", Body=b"n")
    assert s3_bob.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"s"
    denied(s3_bob.get_object_acl, Bucket=bucket, Key="shared")
    # a missing key is AccessDenied to whoever may not list the bucket, not 404
    denied(s3_bob.get_object, Bucket=bucket, Key="absent")

    s3.put_bucket_acl(Bucket=bucket, GrantRead="id=bob-id", GrantWrite="id=bob-id")
    assert [o["Key"] for o in s3_bob.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "private", "shared"]
    s3_bob.put_object(Bucket=bucket, Key="bobs", Body=b"b")
    acl = s3_bob.get_object_acl(Bucket=bucket, Key="bobs")
    assert acl["Owner"]["ID"] == "bob-id"
    # the bucket's owner keeps control of what others write into it
    assert s3.get_object(Bucket=bucket, Key="bobs")["Body"].read() == b"b"
    denied(s3_bob.get_bucket_acl, Bucket=bucket)
    denied(s3_bob.put_bucket_versioning, Bucket=bucket,
           VersioningConfiguration={"Status": "Enabled"})
    denied(s3_bob.delete_bucket, Bucket=bucket)
    s3_bob.delete_object(Bucket=bucket, Key="private")

    s3.put_bucket_acl(Bucket=bucket, ACL="private")  # revoked at once
    denied(s3_bob.list_objects_v2, Bucket=bucket)
    denied(s3_bob.put_object, Bucket=bucket, Key="late", Body=b"l")


def test_anonymous_access_follows_public_grants(s3, anon, cluster):
    name = new_bucket(s3, ACL="public-read")
    s3.put_object(Bucket=name, Key="open", Body=b"o", ACL="public-read")
    s3.put_object(Bucket=name, Key="closed", Body=b"c")
    assert [o["Key"] for o in anon.list_objects(Bucket=name)["Contents"]] == ["closed", "open"]
    assert anon.get_object(Bucket=name, Key="open")["Body"].read() == b"o"
    denied(anon.get_object, Bucket=name, Key="closed")
    denied(anon.put_object, Bucket=name, Key="new", Body=b"n")
    denied(anon.create_bucket, Bucket=f"anon-{uuid.uuid4().hex[:8]}")
    assert anon.list_buckets()["Buckets"] == []
    # a plain HTTP GET, as a browser or curl sends it
    with urllib.request.urlopen(f"{cluster.endpoint}/{name}/open", timeout=10) as answer:
        assert answer.read() == b"o"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{cluster.endpoint}/{name}/closed", timeout=10)
    assert err.value.code == 403

    writable = new_bucket(s3, ACL="public-read-write")
    anon.put_object(Bucket=writable, Key="dropped", Body=b"d")
    assert s3.get_object(Bucket=writable, Key="dropped")["Body"].read() == b"d"
    denied(anon.get_object, Bucket=writable, Key="dropped")  # owned by anonymous, private


def test_acl_of_one_version(s3, anon, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"new")
    s3.put_object_acl(Bucket=bucket, Key="k", VersionId=old, ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="k", VersionId=old)["Body"].read() == b"old"
    denied(anon.get_object, Bucket=bucket, Key="k")
    assert grants(s3.get_object_acl(Bucket=bucket, Key="k")) == [
        ("CanonicalUser", "alice-id", "FULL_CONTROL")]


def test_copy_and_multipart_take_the_acl_asked_for(s3, anon, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", ACL="public-read")
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "src"})
    denied(anon.get_object, Bucket=bucket, Key="plain")  # S3 never copies an ACL
    s3.copy_object(Bucket=bucket, Key="open", CopySource={"Bucket": bucket, "Key": "src"},
                   ACL="public-read")
    assert anon.get_object(Bucket=bucket, Key="open")["Body"].read() == b"x"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu", ACL="public-read")
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": etag}]})
    assert anon.get_object(Bucket=bucket, Key="mpu")["Body"].read() == b"p"


def test_bucket_owner_enforced_disables_acls(s3):
    name = new_bucket(s3, ObjectOwnership="BucketOwnerEnforced")
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")
    assert code(err.value) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert code(err.value) == "AccessControlListNotSupported"
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=f"acl-{uuid.uuid4().hex[:12]}", ACL="public-read",
                         ObjectOwnership="BucketOwnerEnforced")
    assert code(err.value) == "InvalidBucketAclWithObjectOwnership"


@pytest.fixture(scope="module")
def acluster(tmp_path_factory):
    with own_cluster(tmp_path_factory, "acl", ("heal_interval_seconds=0.5",)) as dev:
        yield dev


def test_a_grant_through_one_gateway_is_obeyed_by_another(acluster):
    owner = acluster.client(*USERS["alice"])
    second = acluster.second_gateway()
    bob_there = acluster.client_at(second, *USERS["bob"])
    owner.create_bucket(Bucket="two")
    owner.put_object(Bucket="two", Key="k", Body=b"x")
    denied(bob_there.list_objects_v2, Bucket="two")  # now cached as private there
    for _ in range(3):
        owner.put_bucket_acl(Bucket="two", GrantRead="id=bob-id")
        assert bob_there.list_objects_v2(Bucket="two")["KeyCount"] == 1
        owner.put_bucket_acl(Bucket="two", ACL="private")
        denied(bob_there.list_objects_v2, Bucket="two")
        owner.put_object_acl(Bucket="two", Key="k", GrantRead="id=bob-id")
        assert bob_there.get_object(Bucket="two", Key="k")["Body"].read() == b"x"
        owner.put_object_acl(Bucket="two", Key="k", ACL="private")
        denied(bob_there.get_object, Bucket="two", Key="k")


def test_an_acl_change_missed_by_a_dead_volume_is_healed(acluster):
    s3 = acluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    anon = acluster.client_at(acluster.endpoint, "x", "y", signature_version=UNSIGNED)
    s3.create_bucket(Bucket="heal")
    s3.put_object(Bucket="heal", Key="k", Body=b"x" * 5000, ACL="public-read")
    victim = placement(acluster, "heal", "k")[0]
    acluster.kill_volume(victim)
    try:
        s3.put_object_acl(Bucket="heal", Key="k", ACL="private")
        denied(anon.get_object, Bucket="heal", Key="k")  # revoked with a volume down
    finally:
        acluster.restart_volume(victim)
    denied(anon.get_object, Bucket="heal", Key="k")  # the stale volume never wins
    inc = incarnation(acluster, "heal")
    deadline = time.monotonic() + 30
    while True:
        row = volume_json(acluster, victim, f"/objects/latest?incarnation={inc}&key=k")
        held = row["versions"][0].get("attributes", {}).get("acl", {}).get("value")
        if held == [{"type": "CanonicalUser", "id": "alice-id",
                     "permission": "FULL_CONTROL"}]:
            break
        assert time.monotonic() < deadline, f"{victim} still holds {held}"
        time.sleep(0.5)


def test_expected_bucket_owner(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner="alice-id")
    denied(s3.put_object, Bucket=bucket, Key="k2", Body=b"x", ExpectedBucketOwner="bob-id")
    denied(s3.list_objects_v2, Bucket=bucket, ExpectedBucketOwner="alice-idfoo")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k2")


def test_owners_are_shown_with_their_display_names(s3, s3_bob, bucket):
    s3.put_bucket_acl(Bucket=bucket, GrantWrite="id=bob-id")
    s3_bob.put_object(Bucket=bucket, Key="bobs", Body=b"b")
    s3_bob.create_multipart_upload(Bucket=bucket, Key="up")
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"]
    assert listed[0]["Owner"] == {"ID": "bob-id", "DisplayName": "bob"}
    upload = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]
    assert upload["Owner"] == upload["Initiator"] == {"ID": "bob-id", "DisplayName": "bob"}


def test_a_write_grant_never_erases_history(s3, s3_bob, anon, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    version = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    denied(anon.delete_object, Bucket=bucket, Key="k", VersionId=version)
    denied(s3_bob.delete_object, Bucket=bucket, Key="k", VersionId=version)
    answer = s3_bob.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "k", "VersionId": version}]})
    assert [e["Code"] for e in answer["Errors"]] == ["AccessDenied"]
    s3_bob.delete_object(Bucket=bucket, Key="k")  # a delete marker is allowed
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=version)["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=version)  # the owner may


def test_a_copy_source_is_read_like_a_get(s3, s3_bob, bucket):
    theirs = new_bucket(s3_bob)
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    for key in ("private", "absent"):  # absent keys are not told apart from private ones
        denied(s3_bob.copy_object, Bucket=theirs, Key="c",
               CopySource={"Bucket": bucket, "Key": key})
    s3.put_object_acl(Bucket=bucket, Key="private", GrantRead="id=bob-id")
    s3_bob.copy_object(Bucket=theirs, Key="c", CopySource={"Bucket": bucket, "Key": "private"})
    assert s3_bob.get_object(Bucket=theirs, Key="c")["Body"].read() == b"p"


def test_anonymous_reads_cannot_override_answer_headers(s3, anon, bucket, cluster):
    s3.put_object(Bucket=bucket, Key="page", Body=b"<script>", ACL="public-read")
    with pytest.raises(ClientError) as err:
        anon.get_object(Bucket=bucket, Key="page", ResponseContentType="text/html")
    assert code(err.value) == "InvalidRequest"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="page", ResponseContentType="text/plain\r\nX-A: b")
    assert code(err.value) == "InvalidArgument"
    answer = s3.get_object(Bucket=bucket, Key="page", ResponseContentType="text/plain")
    assert answer["ContentType"] == "text/plain"
