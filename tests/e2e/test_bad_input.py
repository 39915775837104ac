"""Bad input against a real cluster: the right status and S3 code in an XML body with the
request id, never a 500, and never a 200 for a feature that does not exist.

Each table row is one request: raw and signed by hand where boto3 cannot send it (a
bucket `x%2F..`, a header added after signing, a wrong XML root), through boto3 where it
can. Every reply is recorded; the last test checks that none was a 5xx other than 501 and
that the gateway logged no request as failed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS
from tests.e2e.helpers import sign

pytestmark = pytest.mark.e2e

NOT_SIGNED = "There were headers present in the request which were not signed"
REPLIES: list[tuple[str, int, str]] = []  # (what, status, request id) of every reply


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _raw(cluster, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes = b"", unsigned: dict[str, str] | None = None) -> Reply:
    """Send `path` exactly as given (no normalising), SigV4-signed with the body's hash;
    `unsigned` headers are added after signing."""
    headers = dict(headers or {})
    if body or method in ("PUT", "POST"):
        headers["Content-Length"] = str(len(body))
    signed = sign(method, f"{cluster.endpoint}{path}", *USERS["alice"], headers,
                  payload=hashlib.sha256(body).hexdigest())
    signed.update(unsigned or {})
    conn = http.client.HTTPConnection(cluster.endpoint.split("://", 1)[1], timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in signed.items():
            conn.putheader(name, value)
        conn.endheaders(body or None)
        response = conn.getresponse()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                      response.read())
    finally:
        conn.close()
    REPLIES.append((f"{method} {path}", reply.status, reply.headers.get("x-amz-request-id",
                                                                         "")))
    return reply


def assert_s3_error(reply: Reply, status: int, code: str, method: str = "GET",
                    message: str | None = None, **extra: str) -> ET.Element | None:
    """`reply` is an S3 error document with this status and code, carrying the request id
    of its x-amz-request-id header (HEAD answers carry no body)."""
    assert reply.status == status, reply.body[:500]
    request_id = reply.headers.get("x-amz-request-id", "")
    assert request_id
    if method == "HEAD":
        assert reply.body == b""
        return None
    assert reply.headers.get("content-type", "").startswith("application/xml")
    assert reply.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(reply.body)
    assert root.tag == "Error"
    fields = {child.tag: child.text or "" for child in root}
    assert fields["Code"] == code
    assert fields["Message"]
    if message is not None:
        assert fields["Message"] == message
    assert fields["RequestId"] == request_id
    for name, value in extra.items():
        assert fields.get(name) == value, (name, fields)
    return root


# --- raw requests: what boto3 cannot send ---------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # {bucket}, {upload} and {new} are filled in
    status: int
    code: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    unsigned: dict[str, str] = field(default_factory=dict)
    message: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


DELETE_ONE = b"<Delete><Object><Key>k</Key></Object></Delete>"
PART = b"<Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>"

RAW_CASES = [
    # bucket names: checked on every request, before any volume is asked
    Case("bucket-dot", "GET", "/.", 400, "InvalidBucketName", extra={"BucketName": "."}),
    Case("bucket-dotdot", "GET", "/..", 400, "InvalidBucketName", extra={"BucketName": ".."}),
    Case("bucket-dotdot-head", "HEAD", "/..", 400, "InvalidBucketName"),
    Case("bucket-dotdot-key", "GET", "/../k", 400, "InvalidBucketName"),
    Case("bucket-encoded-slash", "GET", "/x%2F..", 400, "InvalidBucketName",
         extra={"BucketName": "x/.."}),
    Case("bucket-encoded-slash-list", "GET", "/x%2F..%2F..?list-type=2", 400,
         "InvalidBucketName", extra={"BucketName": "x/../.."}),
    Case("bucket-encoded-slash-put", "PUT", "/x%2F../key", 400, "InvalidBucketName",
         body=b"data"),
    Case("bucket-encoded-slash-delete", "DELETE", "/..%2Fbuckets/k", 400,
         "InvalidBucketName"),
    Case("bucket-encoded-slash-create", "PUT", "/x%2F..", 400, "InvalidBucketName"),
    Case("bucket-too-short", "GET", "/ab?list-type=2", 400, "InvalidBucketName"),
    Case("bucket-too-long", "GET", "/" + "a" * 256, 400, "InvalidBucketName"),
    Case("bucket-newline", "GET", "/a%0Ab", 400, "InvalidBucketName",
         extra={"BucketName": "a\nb"}),
    Case("bucket-space", "HEAD", "/sp%20ace", 400, "InvalidBucketName"),
    Case("bucket-create-legacy-name", "PUT", "/Upper_Case", 400, "InvalidBucketName",
         extra={"BucketName": "Upper_Case"}),
    Case("bucket-legacy-name-missing", "GET", "/Upper_Case", 404, "NoSuchBucket",
         extra={"BucketName": "Upper_Case"}),
    Case("bucket-missing", "GET", "/no-such-bucket-4f1c?list-type=2", 404, "NoSuchBucket"),
    # x-amz-* headers must be signed
    Case("unsigned-meta-header", "PUT", "/{bucket}/unsigned", 403, "AccessDenied",
         body=b"data", unsigned={"x-amz-meta-foo": "bar"}, message=NOT_SIGNED,
         extra={"HeadersNotSigned": "x-amz-meta-foo"}),
    Case("unsigned-acl-header", "PUT", "/{bucket}/unsigned", 403, "AccessDenied",
         body=b"data", headers={"x-amz-meta-signed": "1"},
         unsigned={"x-amz-acl": "private", "x-amz-meta-late": "1"}, message=NOT_SIGNED,
         extra={"HeadersNotSigned": "x-amz-acl, x-amz-meta-late"}),
    Case("unsigned-on-get", "GET", "/{bucket}/k", 403, "AccessDenied",
         unsigned={"x-amz-checksum-mode": "ENABLED"},
         extra={"HeadersNotSigned": "x-amz-checksum-mode"}),
    # XML bodies must have the operation's document element
    Case("delete-wrong-root", "POST", "/{bucket}?delete", 400, "MalformedXML",
         body=b"<NotDelete><Object><Key>k</Key></Object></NotDelete>"),
    Case("delete-object-as-root", "POST", "/{bucket}?delete", 400, "MalformedXML",
         body=b"<Object><Key>k</Key></Object>"),
    Case("delete-not-xml", "POST", "/{bucket}?delete", 400, "MalformedXML", body=b"k\n"),
    Case("delete-control-char", "POST", "/{bucket}?delete", 400, "MalformedXML",
         body=b"<Delete><Object><Key>a\x01b</Key></Object></Delete>"),
    Case("complete-wrong-root", "POST", "/{bucket}/mpu?uploadId={upload}", 400,
         "MalformedXML", body=b"<Delete>" + PART + b"</Delete>"),
    Case("create-bucket-wrong-root", "PUT", "/{new}", 400, "MalformedXML",
         body=b"<LocationConstraint>us-east-1</LocationConstraint>"),
    # not S3 methods: an XML error too, not the web framework's plain text
    Case("method-patch", "PATCH", "/{bucket}/k", 405, "MethodNotAllowed"),
    Case("method-options", "OPTIONS", "/", 405, "MethodNotAllowed"),
    # a CORS preflight without Origin (browsers always send one)
    Case("preflight-no-origin", "OPTIONS", "/{bucket}/k", 400, "BadRequest"),
]


@pytest.fixture(scope="module")
def shared_bucket(s3) -> str:
    name = f"bad-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"k")
    return name


@pytest.fixture(scope="module")
def upload(s3, shared_bucket: str) -> str:
    return s3.create_multipart_upload(Bucket=shared_bucket, Key="mpu")["UploadId"]


@pytest.mark.parametrize("case", RAW_CASES, ids=lambda c: c.name)
def test_raw_bad_input(cluster, s3, shared_bucket: str, upload: str, case: Case) -> None:
    new = f"new-{uuid.uuid4().hex[:12]}"
    path = case.path.format(bucket=shared_bucket, upload=quote(upload, safe=""), new=new)
    reply = _raw(cluster, case.method, path, case.headers, case.body, case.unsigned)
    assert_s3_error(reply, case.status, case.code, case.method, case.message, **case.extra)
    if case.name == "create-bucket-wrong-root":
        assert new not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if case.name.startswith("unsigned-") and case.method == "PUT":
        with pytest.raises(ClientError):
            s3.head_object(Bucket=shared_bucket, Key="unsigned")


def test_wrong_root_deletes_nothing(cluster, s3, shared_bucket: str) -> None:
    body = b"<Objects><Object><Key>k</Key></Object></Objects>"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    reply = _raw(cluster, "POST", f"/{shared_bucket}?delete", {"Content-MD5": md5}, body)
    assert_s3_error(reply, 400, "MalformedXML")
    assert s3.get_object(Bucket=shared_bucket, Key="k")["Body"].read() == b"k"


def test_signed_amz_headers_still_accepted(cluster, s3, shared_bucket: str) -> None:
    reply = _raw(cluster, "PUT", f"/{shared_bucket}/signed-meta",
                 {"x-amz-meta-foo": "bar", "x-amz-acl": "private"}, b"data")
    assert reply.status == 200, reply.body
    head = s3.head_object(Bucket=shared_bucket, Key="signed-meta")
    assert head["Metadata"] == {"foo": "bar"}


# --- boto3: what a real client sends ------------------------------------------------------


@pytest.fixture(scope="module")
def client(cluster):
    """Alice's boto3 client; every reply's raw status, headers and body are recorded."""
    s3 = cluster.client(*USERS["alice"])
    s3.replies = []  # type: ignore[attr-defined]

    def record(response_dict: dict[str, Any], **_: Any) -> None:
        headers = {k.lower(): v for k, v in response_dict["headers"].items()}
        reply = Reply(response_dict["status_code"], headers, response_dict["body"])
        s3.replies.append(reply)  # type: ignore[attr-defined]
        REPLIES.append(("boto3", reply.status, headers.get("x-amz-request-id", "")))

    s3.meta.events.register("before-parse.s3.*", record)
    return s3


SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
LOCK_DATE = "2030-01-01T00:00:00Z"


@dataclass(frozen=True)
class Boto3Case:
    name: str
    call: Callable[[Any, str], Any]  # (client, bucket) -> response
    status: int
    code: str
    header: str | None = None  # the header a NotImplemented answer names
    stored: str | None = None  # a key the refused request must not have created
    method: str = "GET"  # HEAD answers carry no body; botocore then reports the status


BOTO3_CASES = [
    Boto3Case("bucket-dotdot", lambda c, b: c.list_objects_v2(Bucket=".."), 400,
              "InvalidBucketName"),
    Boto3Case("bucket-dot-head", lambda c, b: c.head_bucket(Bucket="."), 400,
              "InvalidBucketName", method="HEAD"),
    Boto3Case("bucket-legacy-missing", lambda c, b: c.get_object(Bucket="No_Such", Key="k"),
              404, "NoSuchBucket"),
    Boto3Case("bucket-create-invalid", lambda c, b: c.create_bucket(Bucket="Bad_Name"), 400,
              "InvalidBucketName"),
    Boto3Case("put-sse-s3",
              lambda c, b: c.put_object(Bucket=b, Key="sse", Body=b"x",
                                        ServerSideEncryption="AES256"),
              501, "NotImplemented", "x-amz-server-side-encryption", "sse"),
    Boto3Case("put-sse-kms",
              lambda c, b: c.put_object(Bucket=b, Key="kms", Body=b"x",
                                        ServerSideEncryption="aws:kms", SSEKMSKeyId="key-1"),
              501, "NotImplemented", "x-amz-server-side-encryption", "kms"),
    Boto3Case("put-kms-key-only",
              lambda c, b: c.put_object(Bucket=b, Key="kms2", Body=b"x", SSEKMSKeyId="key-1"),
              501, "NotImplemented", "x-amz-server-side-encryption-aws-kms-key-id", "kms2"),
    Boto3Case("put-kms-context",
              lambda c, b: c.put_object(Bucket=b, Key="ctx", Body=b"x",
                                        SSEKMSEncryptionContext="e30="),
              501, "NotImplemented", "x-amz-server-side-encryption-context", "ctx"),
    Boto3Case("put-bucket-key",
              lambda c, b: c.put_object(Bucket=b, Key="bk", Body=b"x", BucketKeyEnabled=True),
              501, "NotImplemented", "x-amz-server-side-encryption-bucket-key-enabled", "bk"),
    Boto3Case("put-sse-c",
              lambda c, b: c.put_object(Bucket=b, Key="ssec", Body=b"x", **SSE_C),
              501, "NotImplemented", "x-amz-server-side-encryption-customer-algorithm",
              "ssec"),
    Boto3Case("get-sse-c", lambda c, b: c.get_object(Bucket=b, Key="k", **SSE_C), 501,
              "NotImplemented", "x-amz-server-side-encryption-customer-algorithm"),
    Boto3Case("head-sse-c", lambda c, b: c.head_object(Bucket=b, Key="k", **SSE_C), 501,
              "NotImplemented", method="HEAD"),
    Boto3Case("mpu-sse-kms",
              lambda c, b: c.create_multipart_upload(Bucket=b, Key="mpu-kms",
                                                     ServerSideEncryption="aws:kms"),
              501, "NotImplemented", "x-amz-server-side-encryption"),
    Boto3Case("mpu-sse-c",
              lambda c, b: c.create_multipart_upload(Bucket=b, Key="mpu-c", **SSE_C),
              501, "NotImplemented", "x-amz-server-side-encryption-customer-algorithm"),
    Boto3Case("copy-sse", lambda c, b: c.copy_object(Bucket=b, Key="copy", CopySource=f"{b}/k",
                                                     ServerSideEncryption="AES256"),
              501, "NotImplemented", None, "copy"),
    Boto3Case("put-lock-mode",
              lambda c, b: c.put_object(Bucket=b, Key="lock", Body=b"x",
                                        ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=LOCK_DATE),
              501, "NotImplemented", "x-amz-object-lock-mode", "lock"),
    Boto3Case("put-lock-until",
              lambda c, b: c.put_object(Bucket=b, Key="until", Body=b"x",
                                        ObjectLockRetainUntilDate=LOCK_DATE),
              501, "NotImplemented", "x-amz-object-lock-retain-until-date", "until"),
    Boto3Case("put-legal-hold",
              lambda c, b: c.put_object(Bucket=b, Key="hold", Body=b"x",
                                        ObjectLockLegalHoldStatus="ON"),
              501, "NotImplemented", "x-amz-object-lock-legal-hold", "hold"),
    Boto3Case("mpu-legal-hold",
              lambda c, b: c.create_multipart_upload(Bucket=b, Key="mpu-hold",
                                                     ObjectLockLegalHoldStatus="ON"),
              501, "NotImplemented", "x-amz-object-lock-legal-hold"),
    Boto3Case("bucket-object-lock",
              lambda c, b: c.create_bucket(Bucket=f"lock-{uuid.uuid4().hex[:12]}",
                                           ObjectLockEnabledForBucket=True),
              501, "NotImplemented", "x-amz-bucket-object-lock-enabled"),
    Boto3Case("bucket-grant-unknown-user",
              lambda c, b: c.create_bucket(Bucket=f"grant-{uuid.uuid4().hex[:12]}",
                                           GrantRead="id=nobody-id"),
              400, "InvalidArgument"),
    Boto3Case("bucket-ownership-preferred",
              lambda c, b: c.create_bucket(Bucket=f"own-{uuid.uuid4().hex[:12]}",
                                           ObjectOwnership="BucketOwnerPreferred"),
              501, "NotImplemented", "x-amz-object-ownership"),
    Boto3Case("put-unknown-canned-acl",
              lambda c, b: c.put_object(Bucket=b, Key="pub", Body=b"x", ACL="public"),
              400, "InvalidArgument", None, "pub"),
    Boto3Case("put-grant-unknown-email",
              lambda c, b: c.put_object(Bucket=b, Key="grant", Body=b"x",
                                        GrantFullControl="emailAddress=nobody@example.com"),
              400, "UnresolvableGrantByEmailAddress", None, "grant"),
    Boto3Case("put-acl-and-grant",
              lambda c, b: c.put_object(Bucket=b, Key="both", Body=b"x", ACL="public-read",
                                        GrantRead="id=bob-id"),
              400, "InvalidRequest", None, "both"),
    Boto3Case("mpu-grant-bad-group",
              lambda c, b: c.create_multipart_upload(
                  Bucket=b, Key="mpu-acl", GrantRead='uri="http://example.com/group"'),
              400, "InvalidArgument"),
    Boto3Case("put-too-many-tags",
              lambda c, b: c.put_object(Bucket=b, Key="tag", Body=b"x",
                                        Tagging="&".join(f"k{i}=v" for i in range(11))),
              400, "InvalidTag", None, "tag"),
    Boto3Case("put-tag-key-twice",
              lambda c, b: c.put_object(Bucket=b, Key="tag2", Body=b"x", Tagging="a=1&a=2"),
              400, "InvalidTag", None, "tag2"),
]


@pytest.mark.parametrize("case", BOTO3_CASES, ids=lambda c: c.name)
def test_boto3_bad_input(client, s3, shared_bucket: str, case: Boto3Case) -> None:
    with pytest.raises(ClientError) as err:
        case.call(client, shared_bucket)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == case.status
    code = str(case.status) if case.method == "HEAD" else case.code
    assert response["Error"]["Code"] == code
    extra = {"Header": case.header} if case.header else {}
    assert_s3_error(client.replies[-1], case.status, case.code, case.method, **extra)
    if case.stored:
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=shared_bucket, Key=case.stored)
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


ACCEPTED = [
    ("put-acl-private",
     lambda c, b: c.put_object(Bucket=b, Key="private", Body=b"x", ACL="private")),
    ("put-acl-owner-full-control",
     lambda c, b: c.put_object(Bucket=b, Key="bofc", Body=b"x",
                               ACL="bucket-owner-full-control")),
    ("mpu-acl-private",
     lambda c, b: c.create_multipart_upload(Bucket=b, Key="mpu-private", ACL="private")),
    ("bucket-acl-private",
     lambda c, b: c.create_bucket(Bucket=f"priv-{uuid.uuid4().hex[:12]}", ACL="private")),
    ("bucket-object-lock-false",
     lambda c, b: c.create_bucket(Bucket=f"nolock-{uuid.uuid4().hex[:12]}",
                                  ObjectLockEnabledForBucket=False)),
    ("bucket-ownership-writer",
     lambda c, b: c.create_bucket(Bucket=f"own-{uuid.uuid4().hex[:12]}",
                                  ObjectOwnership="ObjectWriter")),
    ("bucket-ownership-enforced",
     lambda c, b: c.create_bucket(Bucket=f"enf-{uuid.uuid4().hex[:12]}",
                                  ObjectOwnership="BucketOwnerEnforced")),
    ("delete-bypass-governance",
     lambda c, b: c.delete_object(Bucket=b, Key="gone", BypassGovernanceRetention=True)),
    ("delete-objects-bypass-governance",
     lambda c, b: c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "gone"}]},
                                   BypassGovernanceRetention=True)),
]


@pytest.mark.parametrize(("name", "call"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_harmless_headers_still_accepted(client, shared_bucket: str, name: str,
                                         call: Callable[[Any, str], Any]) -> None:
    status = call(client, shared_bucket)["ResponseMetadata"]["HTTPStatusCode"]
    assert status in (200, 204)


# --- keys with newlines, tabs, control characters and any Unicode -------------------------


KEYS = ["a\nb", "\n", "trailing\n", "tab\tkey", "cr\rkey", "crlf\r\nkey", "ünïcødé/键/🎉",
        "ctl\x01\x1fkey", "two  spaces", "x/../y", "..", ".", "./a", "%0A", "q?x#y&z<>",
        "\x7f\u0085\u2028"]


@pytest.fixture(scope="module")
def key_bucket(s3) -> str:
    name = f"keys-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def test_any_key_stored_read_and_listed(client, key_bucket: str) -> None:
    for i, key in enumerate(KEYS):
        body = f"body {i}".encode()
        client.put_object(Bucket=key_bucket, Key=key, Body=body)
        assert client.get_object(Bucket=key_bucket, Key=key)["Body"].read() == body, key
        assert client.head_object(Bucket=key_bucket, Key=key)["ContentLength"] == len(body)
    # boto3 lists with encoding-type=url and decodes, so every key comes back exactly
    v2 = [o["Key"] for o in client.list_objects_v2(Bucket=key_bucket)["Contents"]]
    v1 = [o["Key"] for o in client.list_objects(Bucket=key_bucket)["Contents"]]
    assert sorted(v2) == sorted(v1) == sorted(KEYS)
    for key in ("a\nb", "ünïcødé/键/🎉"):
        prefixed = client.list_objects_v2(Bucket=key_bucket, Prefix=key)["Contents"]
        assert [o["Key"] for o in prefixed] == [key]


def test_listing_without_url_encoding(cluster, client, key_bucket: str) -> None:
    """Newlines and tabs are plain XML text, a carriage return a reference that reads back
    exactly; other C0 controls are written as S3 writes them (`&#x1;`), so the keys that
    XML 1.0 can carry are read exactly by any parser."""
    for key in ("a\nb", "\n", "tab\tkey", "cr\rkey", "crlf\r\nkey", "ünïcødé/键/🎉"):
        client.put_object(Bucket=key_bucket, Key=key, Body=b"x")
        reply = _raw(cluster, "GET", f"/{key_bucket}?list-type=2&prefix={quote(key, safe='')}")
        assert reply.status == 200
        listed = [n.text for n in ET.fromstring(reply.body).iter()
                  if n.tag.endswith("}Key")]
        assert listed == [key]
    client.put_object(Bucket=key_bucket, Key="ctl\x01\x1fkey", Body=b"x")
    reply = _raw(cluster, "GET", f"/{key_bucket}?list-type=2&prefix=ctl")
    assert reply.status == 200
    assert b"<Key>ctl&#x1;&#x1f;key</Key>" in reply.body


def test_newline_key_not_found_is_an_s3_error(cluster, key_bucket: str) -> None:
    reply = _raw(cluster, "GET", f"/{key_bucket}/missing%0Akey")
    root = assert_s3_error(reply, 404, "NoSuchKey")
    assert root is not None and root.findtext("Key") == "missing\nkey"


def test_any_key_deleted(client, key_bucket: str) -> None:
    for key in KEYS:
        client.put_object(Bucket=key_bucket, Key=key, Body=b"x")
    # botocore writes "\r" and C0 controls raw into the Delete body, where XML cannot
    # carry them (S3 asks for &#13;): those go one by one.
    batch = [k for k in KEYS if not any(c in k for c in "\r\x01\x1f")]
    result = client.delete_objects(Bucket=key_bucket,
                                   Delete={"Objects": [{"Key": k} for k in batch]})
    assert sorted(d["Key"] for d in result["Deleted"]) == sorted(batch)
    assert not result.get("Errors")
    for key in set(KEYS) - set(batch):
        client.delete_object(Bucket=key_bucket, Key=key)
    assert client.list_objects_v2(Bucket=key_bucket)["KeyCount"] == 0


# --- no request failed --------------------------------------------------------------------


def test_no_reply_was_a_server_error(cluster) -> None:
    """Runs last in this module: no reply above was a 5xx other than 501, and the gateway
    logged none of these requests as failed (an unexpected exception)."""
    if not REPLIES:
        pytest.skip("checks the replies of the tests above; run with them")
    errors = [(what, status) for what, status, _ in REPLIES if status >= 500 and status != 501]
    assert errors == []
    log = (cluster.data / "logs" / "gateway.log").read_text(errors="replace")
    failed = [rid for _, _, rid in REPLIES if rid and f"request {rid} failed" in log]
    assert failed == []
