"""Signatures over header values that are not ASCII: a client signs the bytes it sends
(botocore sends and signs such a value as UTF-8), so verification must hash those very
bytes, for SigV4 and SigV2, and an error body must still show what was hashed."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.auth import canonical
from gateway.auth.sigv4 import authenticate
from gateway.errors import S3Error

AK = "AKIDSHARDGATE"
SK = "s3cr3t-key"
REGION = "us-east-1"
URL = "http://gw.example:9000/bucket/report.txt"
VALUES = {
    "content-disposition": 'attachment; filename="résumé 日本.txt"',
    "content-type": "text/plain; name=naïve",
    "x-amz-meta-note": "Hello World\xe9",
}


def lookup(key: str) -> str | None:
    return {AK: SK}.get(key)


def as_received(signed: dict[str, str | bytes]) -> dict[str, str]:
    """The headers as the gateway sees them: each value sent as UTF-8 bytes (what
    botocore's HTTP stack sends), read back one character per byte."""
    raw = [(name.lower().encode(), value if isinstance(value, bytes)
            else value.encode("utf-8")) for name, value in signed.items()]
    return canonical.headers_from_asgi([(b"host", b"gw.example:9000"), *raw])


def verify(headers: dict[str, str]) -> object:
    parts = urlsplit(URL)
    return authenticate("PUT", parts.path, parts.query, headers, lookup, REGION,
                        datetime.now(UTC))


def test_sigv4_over_utf8_header_values() -> None:
    req = AWSRequest(method="PUT", url=URL, headers=dict(VALUES), data=b"body")
    S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(req)
    ctx = verify(as_received(dict(req.headers.items())))
    assert ctx is not None


def test_sigv2_over_utf8_header_values() -> None:
    req = AWSRequest(method="PUT", url=URL, headers=dict(VALUES), data=b"body")
    HmacV1Auth(Credentials(AK, SK)).add_auth(req)
    ctx = verify(as_received(dict(req.headers.items())))
    assert ctx is not None


def test_a_changed_byte_still_fails_and_the_error_shows_the_request() -> None:
    req = AWSRequest(method="PUT", url=URL, headers=dict(VALUES), data=b"body")
    S3SigV4Auth(Credentials(AK, SK), "s3", REGION).add_auth(req)
    headers = dict(req.headers.items())
    headers["x-amz-meta-note"] = b"Hello World\xe9"  # latin-1, not the UTF-8 that was signed
    with pytest.raises(S3Error) as err:
        verify(as_received(headers))
    assert err.value.code == "SignatureDoesNotMatch"
    shown = err.value.extra["CanonicalRequest"]
    shown.encode("utf-8")  # no lone surrogates: the error body can carry it
    assert "x-amz-meta-note:Hello World\ufffd" in shown
