"""Every x-amz-* header sent must be signed, in the header form as in presigned URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.auth.checks import signed_headers
from gateway.auth.sigv4 import authenticate
from gateway.errors import S3Error

AK, SK, REGION = "AKIDSHARDGATE", "secret-key", "us-east-1"
URL = "http://gw.example:9000/bucket/key"
NOT_SIGNED = "There were headers present in the request which were not signed"


def _verify(method: str, url: str, headers: dict[str, str]):
    parts = urlsplit(url)
    lower = {k.lower(): v for k, v in headers.items()}
    lower.setdefault("host", parts.netloc)
    return authenticate(method, parts.path, parts.query, lower, {AK: SK}.get, REGION,
                        datetime.now(UTC))


def _header_signed(method: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    request = AWSRequest(method=method, url=URL, headers=headers or {})
    S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(("signed", "sent", "missing"), [
    ("host;x-amz-content-sha256;x-amz-date", ["x-amz-meta-foo"], "x-amz-meta-foo"),
    ("host;x-amz-date", ["x-amz-content-sha256"], "x-amz-content-sha256"),
    ("host;x-amz-content-sha256", ["x-amz-date", "x-amz-acl"], "x-amz-acl, x-amz-date"),
    ("x-amz-date", ["x-amz-meta-b", "x-amz-meta-a"], "host, x-amz-meta-a, x-amz-meta-b"),
])
def test_unsigned_listed(signed: str, sent: list[str], missing: str) -> None:
    headers = {"host": "h", **{name: "v" for name in sent}}
    with pytest.raises(S3Error) as err:
        signed_headers(signed, headers)
    assert (err.value.code, err.value.status) == ("AccessDenied", 403)
    assert err.value.message == NOT_SIGNED
    assert err.value.extra == {"HeadersNotSigned": missing}


def test_other_headers_need_not_be_signed() -> None:
    headers = {"host": "h", "user-agent": "x", "x-amzn-trace-id": "t", "content-type": "a/b",
               "expect": "100-continue", "x-amz-date": "d"}
    assert signed_headers("host;x-amz-date", headers) == ["host", "x-amz-date"]


def test_header_form_refuses_an_added_meta_header() -> None:
    headers = _header_signed("PUT")
    assert _verify("PUT", URL, headers) is not None
    headers["x-amz-meta-foo"] = "added after signing"
    with pytest.raises(S3Error) as err:
        _verify("PUT", URL, headers)
    assert err.value.code == "AccessDenied"
    assert err.value.extra == {"HeadersNotSigned": "x-amz-meta-foo"}


def test_botocore_signs_every_amz_header_it_sends() -> None:
    headers = _header_signed("PUT", {"x-amz-meta-foo": "1", "x-amz-acl": "private",
                                     "x-amz-storage-class": "STANDARD",
                                     "x-amz-checksum-crc32": "AAAAAA=="})
    assert _verify("PUT", URL, headers) is not None


def test_presigned_headers_sent_must_be_signed() -> None:
    request = AWSRequest(method="PUT", url=URL, headers={"x-amz-meta-foo": "1"})
    S3SigV4QueryAuth(Credentials(AK, SK), "s3", REGION, expires=60).add_auth(request)
    assert _verify("PUT", request.url, {"x-amz-meta-foo": "1"}) is not None
    with pytest.raises(S3Error) as err:
        _verify("PUT", request.url, {"x-amz-meta-foo": "1", "x-amz-meta-bar": "2"})
    assert err.value.extra == {"HeadersNotSigned": "x-amz-meta-bar"}
