"""Authentication and ownership: SigV4 failures, private buckets, volume-server JWTs."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from shardgate.tokens import mint_token
from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e


def test_wrong_secret(cluster, bucket):
    bad = cluster.client(USERS["alice"][0], "not-the-secret")
    with pytest.raises(ClientError) as err:
        bad.list_objects_v2(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key(cluster, bucket):
    bad = cluster.client("AKIAUNKNOWN000000000", "whatever")
    with pytest.raises(ClientError) as err:
        bad.list_objects_v2(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_other_user_denied(s3_bob, bucket):
    for call in (lambda: s3_bob.list_objects_v2(Bucket=bucket),
                 lambda: s3_bob.put_object(Bucket=bucket, Key="x", Body=b"x"),
                 lambda: s3_bob.get_object(Bucket=bucket, Key="x")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_anonymous_denied(cluster, bucket):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{cluster.endpoint}/{bucket}", timeout=5)
    assert err.value.code == 403
    body = err.value.read()
    assert b"<Code>AccessDenied</Code>" in body and b"<RequestId>" in body


def test_presigned_get(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    signer = cluster.client(*USERS["alice"], signature_version="s3v4")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"},
                                    ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read() == b"presigned"


def _volume_get(url: str, token: str | None) -> int:
    request = urllib.request.Request(f"{url}/health")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_volume_requires_jwt(cluster):
    vid = cluster.volume_ids[0]
    url = cluster.config.volume(vid).url
    assert _volume_get(url, cluster.token(vid)) == 200
    assert _volume_get(url, None) == 401
    assert _volume_get(url, "garbage") == 401
    assert _volume_get(url, mint_token("x" * 32, vid, "read")) == 401
    assert _volume_get(url, cluster.token(cluster.volume_ids[1])) == 401  # other volume's
