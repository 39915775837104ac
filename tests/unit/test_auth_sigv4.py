"""SigV4 verification against requests signed by botocore, boto3 and the AWS CRT signer."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import awscrt.auth
import awscrt.http
import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.auth import canonical
from gateway.auth.sigv4 import (
    SHA256_PAYLOAD,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthContext,
    authenticate,
)
from gateway.errors import S3Error

AK = "AKIDSHARDGATE"
SK = "s3cr3t/Key+with=odd chars"
REGION = "us-east-1"
ENDPOINT = "http://gw.example:9000"
KEYS = [
    "plain.txt",
    "with space/and  two",
    "plus+sign",
    "percent%25literal%",
    "unicodé/ключ/日本語 🎉",
    "double//slash///x",
    "dot/./segments/../kept",
    "reserved!$&'()*,;=:@[]",
    "~tilde-_.",
    "trailing/",
    "question?mark#hash",
]


def lookup(key: str) -> str | None:
    return {AK: SK}.get(key)


def now() -> datetime:
    return datetime.now(UTC)


def verify(method: str, url: str, headers: dict[str, str], at: datetime | None = None,
           secrets=lookup, region: str = REGION) -> AuthContext | None:
    parts = urlsplit(url)
    hdrs = {k.lower(): v for k, v in headers.items()}
    hdrs.setdefault("host", parts.netloc)
    return authenticate(method, parts.path, parts.query, hdrs, secrets, region, at or now())


def botocore_sign(method: str, url: str, headers: dict[str, str] | None = None,
                  body: bytes = b"", secret: str = SK, region: str = REGION) -> dict[str, str]:
    req = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    S3SigV4Auth(Credentials(AK, secret), "s3", region).add_auth(req)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in req.headers.items()}


def botocore_presign(method: str, url: str, expires: int = 60,
                     headers: dict[str, str] | None = None) -> str:
    req = AWSRequest(method=method, url=url, headers=headers or {})
    S3SigV4QueryAuth(Credentials(AK, SK), "s3", REGION, expires=expires).add_auth(req)
    return req.url


def object_url(key: str, query: str = "") -> str:
    return f"{ENDPOINT}/bucket/{quote(key, safe='/~')}" + (f"?{query}" if query else "")


# --- canonical pieces ----------------------------------------------------------------------


def test_signing_key_matches_aws_published_vector() -> None:
    # AWS General Reference, "Examples of how to derive a signing key for Signature Version 4"
    key = canonical.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_canonical_query_decodes_reencodes_and_sorts() -> None:
    pairs = canonical.parse_query("b=2&a=z&a=y&acl&x=%7e%2fé+c&X-Amz-Signature=s")
    assert canonical.canonical_query(pairs, exclude="X-Amz-Signature") == \
        "a=y&a=z&acl=&b=2&x=~%2F%C3%A9%20c"


def test_trim_and_asgi_headers() -> None:
    assert canonical.trim_value("  a   b \t c  ") == "a b c"
    raw = [(b"Host", b"h"), (b"X-Amz-Meta-A", b" one "), (b"x-amz-meta-a", b"two")]
    assert canonical.headers_from_asgi(raw) == {"host": "h", "x-amz-meta-a": "one,two"}


def test_reencoded_uri_keeps_encoded_slash() -> None:
    assert canonical.reencoded_uri("/b/a b/c%2fd!") == "/b/a%20b/c%2Fd%21"
    assert canonical.canonical_uri("") == "/"


# --- AWS documentation examples ------------------------------------------------------------


def test_aws_get_object_example() -> None:
    # S3 API reference, sig-v4-header-based-auth: "Example: GET Object"
    headers = {
        "host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9",
        "x-amz-content-sha256": canonical.EMPTY_SHA256, "x-amz-date": "20130524T000000Z",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
        "us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"}
    ctx = authenticate("GET", "/test.txt", "", headers,
                       {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}.get,
                       "us-east-1", datetime(2013, 5, 24, 0, 5, tzinfo=UTC))
    assert ctx is not None
    assert ctx.payload_mode == SHA256_PAYLOAD
    assert ctx.payload_sha256 == canonical.EMPTY_SHA256
    assert ctx.scope == "20130524/us-east-1/s3/aws4_request"


# --- botocore-signed requests --------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_botocore_header_auth_for_awkward_keys(key: str) -> None:
    url = object_url(key)
    body = b"payload " + key.encode()
    headers = botocore_sign("PUT", url, {"x-amz-meta-note": "  spaced   out  value "}, body)
    ctx = verify("PUT", url, headers)
    assert ctx is not None and ctx.access_key == AK
    assert ctx.payload_mode == SHA256_PAYLOAD


@pytest.mark.parametrize("query", [
    "list-type=2&prefix=a%20b%2Bc%2F%C3%A9&delimiter=%2F",
    "acl",
    "uploads&encoding-type=url",
    "partNumber=3&uploadId=abc%2Fdef%3D%3D",
    "versions&key-marker=%E2%9C%93&max-keys=5",
])
def test_botocore_header_auth_with_query(query: str) -> None:
    url = object_url("k y", query)
    headers = botocore_sign("GET", url)
    assert verify("GET", url, headers) is not None


@pytest.mark.parametrize("key", KEYS)
def test_botocore_presigned_urls(key: str) -> None:
    url = botocore_presign("GET", object_url(key, "versionId=v%201"))
    ctx = verify("GET", url, {})
    assert ctx is not None and ctx.presigned
    assert ctx.payload_mode == UNSIGNED_PAYLOAD


def test_date_header_instead_of_x_amz_date() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url, {"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert "X-Amz-Date" not in headers
    assert verify("GET", url, headers) is not None


@pytest.mark.parametrize("stamp", ["2026-12-03T23:59:59Z", "20261203T235959", "20261303T000000Z"])
def test_a_malformed_x_amz_date_is_access_denied(stamp: str) -> None:
    url = object_url("k")
    headers = {**botocore_sign("GET", url), "X-Amz-Date": stamp}
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers)
    assert err.value.code == "AccessDenied"
    assert "x-amz-date" in err.value.message


def test_wrong_secret_is_signature_does_not_match() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url, secret="not-the-secret")
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers)
    assert err.value.code == "SignatureDoesNotMatch"
    assert "CanonicalRequest" in err.value.extra


@pytest.mark.parametrize("tamper", ["path", "query", "header", "method"])
def test_tampered_request_is_rejected(tamper: str) -> None:
    url = object_url("k", "a=1")
    headers = botocore_sign("GET", url, {"x-amz-meta-x": "1"})
    method = "GET"
    if tamper == "path":
        url = object_url("K", "a=1")
    elif tamper == "query":
        url = object_url("k", "a=2")
    elif tamper == "header":
        headers["x-amz-meta-x"] = "2"
    else:
        method = "DELETE"
    with pytest.raises(S3Error) as err:
        verify(method, url, headers)
    assert err.value.code == "SignatureDoesNotMatch"


def test_unknown_access_key() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url)
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers, secrets=lambda _: None)
    assert err.value.code == "InvalidAccessKeyId"


@pytest.mark.parametrize("offset", [timedelta(minutes=16), timedelta(minutes=-16)])
def test_skewed_clock(offset: timedelta) -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url)
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers, at=now() + offset)
    assert err.value.code == "RequestTimeTooSkewed"
    assert verify("GET", url, headers, at=now() + timedelta(minutes=14)) is not None


def test_region_mismatch_names_expected_region() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url, region="eu-west-1")
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers)
    assert err.value.code == "AuthorizationHeaderMalformed"
    assert "us-east-1" in err.value.message and err.value.extra["Region"] == "us-east-1"


def test_expired_presigned_url() -> None:
    url = botocore_presign("GET", object_url("k"), expires=60)
    assert verify("GET", url, {}, at=now() + timedelta(seconds=30)) is not None
    with pytest.raises(S3Error) as err:
        verify("GET", url, {}, at=now() + timedelta(seconds=120))
    assert err.value.code == "AccessDenied"
    assert err.value.message == "Request has expired"


def test_presigned_url_from_the_future_is_not_valid_yet() -> None:
    url = botocore_presign("GET", object_url("k"))
    with pytest.raises(S3Error) as err:
        verify("GET", url, {}, at=now() - timedelta(hours=1))
    assert err.value.code == "AccessDenied"


def test_presigned_with_a_malformed_x_amz_date() -> None:
    url = botocore_presign("GET", object_url("k"))
    stamp = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    with pytest.raises(S3Error) as err:
        verify("GET", url.replace(stamp, stamp[:-1]), {})
    assert err.value.code == "AuthorizationQueryParametersError"
    assert "ISO8601" in err.value.message


def test_presigned_expires_capped_at_a_week() -> None:
    url = botocore_presign("GET", object_url("k"), expires=604801)
    with pytest.raises(S3Error) as err:
        verify("GET", url, {})
    assert err.value.code == "AuthorizationQueryParametersError"


def test_presigned_tampered_query_and_wrong_secret() -> None:
    url = botocore_presign("GET", object_url("k", "versionId=1"))
    with pytest.raises(S3Error) as err:
        verify("GET", url.replace("versionId=1", "versionId=2"), {})
    assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as err:
        verify("GET", url, {}, secrets=lambda _: "other")
    assert err.value.code == "SignatureDoesNotMatch"


def test_presigned_rejects_unsigned_amz_headers() -> None:
    url = botocore_presign("PUT", object_url("k"))
    assert verify("PUT", url, {}) is not None
    with pytest.raises(S3Error) as err:
        verify("PUT", url, {"x-amz-copy-source": "/other/secret"})
    assert err.value.code == "AccessDenied"
    assert err.value.extra["HeadersNotSigned"] == "x-amz-copy-source"


def test_presigned_with_signed_content_sha256() -> None:
    headers = {"x-amz-content-sha256": canonical.EMPTY_SHA256}
    url = botocore_presign("PUT", object_url("k"), headers=headers)
    ctx = verify("PUT", url, headers)
    assert ctx is not None and ctx.payload_mode == SHA256_PAYLOAD


def test_presigned_region_mismatch() -> None:
    url = botocore_presign("GET", object_url("k"))
    with pytest.raises(S3Error) as err:
        verify("GET", url, {}, region="eu-central-1")
    assert err.value.code == "AuthorizationQueryParametersError"
    assert err.value.extra["Region"] == "eu-central-1"


def test_anonymous_requests_return_none() -> None:
    assert verify("GET", object_url("k", "list-type=2"), {}) is None


def test_header_and_query_auth_together() -> None:
    url = botocore_presign("GET", object_url("k"))
    with pytest.raises(S3Error) as err:
        verify("GET", url, {"authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert err.value.code == "InvalidArgument"


@pytest.mark.parametrize(("header", "code"), [
    ("AWS4-ECDSA-P256-SHA256 Credential=x", "InvalidRequest"),
    ("Bearer token", "InvalidArgument"),
    ("AWS4-HMAC-SHA256 Credential=x", "AuthorizationHeaderMalformed"),
    (f"AWS4-HMAC-SHA256 Credential={AK}/2013/us-east-1/s3/aws4_request, SignedHeaders=host, "
     "Signature=00", "AuthorizationHeaderMalformed"),
])
def test_malformed_authorization(header: str, code: str) -> None:
    headers = {"authorization": header, "x-amz-date": now().strftime("%Y%m%dT%H%M%SZ"),
               "x-amz-content-sha256": UNSIGNED_PAYLOAD}
    with pytest.raises(S3Error) as err:
        verify("GET", object_url("k"), headers)
    assert err.value.code == code


def test_host_must_be_signed() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url)
    auth = headers["Authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    headers["Authorization"] = auth
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers)
    assert err.value.code == "AccessDenied"


def test_missing_content_sha256() -> None:
    url = object_url("k")
    headers = botocore_sign("GET", url)
    del headers["X-Amz-Content-SHA256"]
    with pytest.raises(S3Error) as err:
        verify("GET", url, headers)
    assert err.value.code == "InvalidRequest"


@settings(max_examples=60, deadline=None)
@given(key=st.text(min_size=1, max_size=40),
       value=st.text(max_size=20),
       meta=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30))
def test_botocore_roundtrip_property(key: str, value: str, meta: str) -> None:
    url = object_url(key, f"prefix={quote(value, safe='-_.~')}&list-type=2")
    headers = botocore_sign("GET", url, {"x-amz-meta-m": meta})
    assert verify("GET", url, headers) is not None


# --- whole boto3 clients and the CRT signer ------------------------------------------------


class _EmptyRaw:
    def stream(self, *args: object, **kwargs: object):
        yield b""


def boto3_requests(endpoint: str, calls, **config: object) -> list:
    """Run boto3 client calls, capturing each prepared request instead of sending it."""
    captured = []

    def before_send(request, **kwargs):
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _EmptyRaw())

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AK,
                          aws_secret_access_key=SK, region_name=REGION,
                          config=Config(s3={"addressing_style": "path"}, **config))
    client.meta.events.register("before-send.s3", before_send)
    for call in calls:
        with contextlib.suppress(Exception):  # an empty 200 does not parse for every call
            call(client)
    return captured


def request_headers(request) -> dict[str, str]:
    return {k.lower(): (v.decode() if isinstance(v, bytes) else str(v))
            for k, v in request.headers.items()}


@pytest.mark.parametrize("endpoint", ["http://gw.example:9000", "https://gw.example"])
def test_boto3_client_requests_verify(endpoint: str) -> None:
    calls = []
    for key in KEYS:
        calls += [
            lambda c, k=key: c.put_object(Bucket="b", Key=k, Body=b"x" * 100,
                                          Metadata={"note": "a  b"}),
            lambda c, k=key: c.get_object(Bucket="b", Key=k, Range="bytes=0-1"),
            lambda c, k=key: c.upload_part(Bucket="b", Key=k, UploadId="u/p+id==",
                                           PartNumber=2, Body=b"part"),
            lambda c, k=key: c.copy_object(Bucket="b", Key=k,
                                           CopySource={"Bucket": "src", "Key": k}),
        ]
    calls += [
        lambda c: c.list_objects_v2(Bucket="b", Prefix="a b+c/é", Delimiter="/",
                                    StartAfter="x y"),
        lambda c: c.delete_objects(Bucket="b", Delete={"Objects": [{"Key": "a"}]}),
        lambda c: c.get_bucket_acl(Bucket="b"),
    ]
    requests = boto3_requests(endpoint, calls)
    assert len(requests) == len(calls)
    for req in requests:
        parts = urlsplit(req.url)
        ctx = authenticate(req.method, parts.path, parts.query, request_headers(req), lookup,
                           REGION, now())
        assert ctx is not None, req.url
    # over HTTPS boto3 streams PutObject/UploadPart as aws-chunked with a trailing CRC32
    modes = {authenticate(r.method, urlsplit(r.url).path, urlsplit(r.url).query,
                          request_headers(r), lookup, REGION, now()).payload_mode
             for r in requests if r.method == "PUT"}
    if endpoint.startswith("https"):
        assert STREAMING_UNSIGNED_TRAILER in modes


def test_boto3_presigned_urls_verify() -> None:
    client = boto3.client("s3", endpoint_url=ENDPOINT, aws_access_key_id=AK,
                          aws_secret_access_key=SK, region_name=REGION,
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))
    for key in KEYS:
        for op in ("get_object", "put_object", "head_object"):
            url = client.generate_presigned_url(op, Params={"Bucket": "b", "Key": key},
                                                ExpiresIn=300)
            method = {"get_object": "GET", "put_object": "PUT", "head_object": "HEAD"}[op]
            assert verify(method, url, {}) is not None


@pytest.mark.parametrize("path", ["/b/a!b(c)*'", "/b/a%20b/c%2Bd//%C3%A9%25.txt", "/b/a b",
                                  "/b/x$y=z@w:v", "/b/%E2%9C%93"])
def test_crt_signer_requests_verify(path: str) -> None:
    """The AWS CRT signer (s3torchconnector, CRT transfer) encodes reserved path characters."""
    at = now()
    creds = awscrt.auth.AwsCredentialsProvider.new_static(AK, SK)
    req = awscrt.http.HttpRequest("GET", path + "?list-type=2&prefix=a%20b&acl",
                                  awscrt.http.HttpHeaders([("host", "gw.example")]))
    config = awscrt.auth.AwsSigningConfig(
        credentials_provider=creds, region=REGION, service="s3", date=at,
        use_double_uri_encode=False, should_normalize_uri_path=False,
        signed_body_value=awscrt.auth.AwsSignedBodyValue.UNSIGNED_PAYLOAD,
        signed_body_header_type=awscrt.auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256)
    signed = awscrt.auth.aws_sign_request(req, config).result()
    raw_path, _, raw_query = signed.path.partition("?")
    headers = {k.lower(): v for k, v in signed.headers}
    ctx = authenticate("GET", raw_path, raw_query, headers, lookup, REGION, at)
    assert ctx is not None and ctx.payload_mode == UNSIGNED_PAYLOAD
