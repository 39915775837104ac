"""SigV2 end to end: a boto3 client with signature_version="s3" and its presigned URLs."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from email.utils import formatdate

import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e

KEY = "a b/c+d"


@pytest.fixture(scope="module")
def s3v2(cluster):
    return cluster.client(*USERS["alice"], signature_version="s3")


def code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def status(exc: ClientError) -> int:
    return exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_object_lifecycle_with_sigv2(s3v2, s3):
    bucket = "t-sigv2-objects"
    s3v2.create_bucket(Bucket=bucket)
    body = b"hello sigv2 " * 100
    put = s3v2.put_object(Bucket=bucket, Key=KEY, Body=body, ContentType="text/plain",
                          Metadata={"note": "v2 signed", "n": "1"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3v2.get_object(Bucket=bucket, Key=KEY)
    assert got["Body"].read() == body
    assert got["Metadata"] == {"note": "v2 signed", "n": "1"}
    assert got["ContentType"] == "text/plain"
    head = s3v2.head_object(Bucket=bucket, Key=KEY)
    assert head["ContentLength"] == len(body)
    ranged = s3v2.get_object(Bucket=bucket, Key=KEY, Range="bytes=6-10")
    assert ranged["Body"].read() == body[6:11]
    assert ranged["ContentRange"] == f"bytes 6-10/{len(body)}"
    listed = s3v2.list_objects(Bucket=bucket, Prefix="a b/")
    assert [o["Key"] for o in listed["Contents"]] == [KEY]
    listed2 = s3v2.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed2["Contents"]] == [KEY]
    # the same object through the SigV4 client
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == body

    s3v2.put_object_tagging(Bucket=bucket, Key=KEY, Tagging={"TagSet": [
        {"Key": "team", "Value": "a b+c"}]})
    tags = s3v2.get_object_tagging(Bucket=bucket, Key=KEY)["TagSet"]
    assert tags == [{"Key": "team", "Value": "a b+c"}]

    s3v2.delete_object(Bucket=bucket, Key=KEY)
    with pytest.raises(ClientError) as err:
        s3v2.head_object(Bucket=bucket, Key=KEY)
    assert status(err.value) == 404
    s3v2.delete_bucket(Bucket=bucket)


def test_multipart_upload_with_sigv2(s3v2):
    bucket = "t-sigv2-multipart"
    s3v2.create_bucket(Bucket=bucket)
    first, second = b"1" * (5 * 1024 * 1024), b"2" * 1000
    upload = s3v2.create_multipart_upload(Bucket=bucket, Key=KEY)["UploadId"]
    parts = []
    for number, data in ((1, first), (2, second)):
        answer = s3v2.upload_part(Bucket=bucket, Key=KEY, UploadId=upload, PartNumber=number,
                                  Body=data)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    listed = s3v2.list_parts(Bucket=bucket, Key=KEY, UploadId=upload)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    uploads = s3v2.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["UploadId"] for u in uploads] == [upload]
    s3v2.complete_multipart_upload(Bucket=bucket, Key=KEY, UploadId=upload,
                                   MultipartUpload={"Parts": parts})
    got = s3v2.get_object(Bucket=bucket, Key=KEY)["Body"].read()
    assert got == first + second
    s3v2.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": KEY}]})
    s3v2.delete_bucket(Bucket=bucket)


def test_content_md5_still_protects_the_body(s3v2, bucket):
    with pytest.raises(ClientError) as err:
        s3v2.put_object(Bucket=bucket, Key="k", Body=b"payload",
                        ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")  # the MD5 of b""
    assert code(err.value) == "BadDigest"


def test_presigned_v2_get(s3v2, s3, bucket):
    s3.put_object(Bucket=bucket, Key=KEY, Body=b"presigned v2")
    url = s3v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": KEY},
                                      ExpiresIn=60)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "X-Amz-" not in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned v2"
    overridden = s3v2.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": KEY,
                              "ResponseContentType": "application/x-test"}, ExpiresIn=60)
    with urllib.request.urlopen(overridden, timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/x-test"


def test_presigned_v2_expired(s3v2, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                      ExpiresIn=-10)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 403
    body = err.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_presigned_v2_tampered(s3v2, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                      ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url.replace(f"/{bucket}/k?", f"/{bucket}/K?"), timeout=10)
    assert err.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in err.value.read()


def test_wrong_secret_with_sigv2(cluster, bucket):
    bad = cluster.client(USERS["alice"][0], "not-the-secret", signature_version="s3")
    with pytest.raises(ClientError) as err:
        bad.list_objects(Bucket=bucket)
    assert code(err.value) == "SignatureDoesNotMatch" and status(err.value) == 403
    with pytest.raises(ClientError) as err:
        bad.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert code(err.value) == "SignatureDoesNotMatch"


def _raw(url: str, method: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_what_boto3_cannot_send(cluster, bucket):
    """The s3-tests cases whose headers botocore's signer overwrites, sent as they mean."""
    url = f"{cluster.endpoint}/{bucket}"
    answer = _raw(url, "GET", {"Authorization": "AWS HAHAHA", "Date": formatdate(usegmt=True)})
    assert answer[0] == 400 and b"<Code>InvalidArgument</Code>" in answer[1]
    request = AWSRequest(method="GET", url=url)
    HmacV1Auth(Credentials(*USERS["alice"])).add_auth(request)
    signed = dict(request.headers.items())
    assert _raw(url, "GET", signed)[0] == 200
    del signed["Date"]
    answer = _raw(url, "GET", signed)
    assert answer[0] == 403 and b"<Code>AccessDenied</Code>" in answer[1]


def test_other_user_still_denied_with_sigv2(cluster, bucket):
    bob = cluster.client(*USERS["bob"], signature_version="s3")
    with pytest.raises(ClientError) as err:
        bob.get_object(Bucket=bucket, Key="k")
    assert code(err.value) == "AccessDenied"
