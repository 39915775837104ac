"""Verify a SigV4 request (Authorization header or presigned query) into an AuthContext.

Handlers never read the Authorization header: the app calls `authenticate` once and passes
the result on. Follows "Authenticating Requests: Using the Authorization Header (AWS
Signature Version 4)" in the S3 API reference; the query form lives in `presigned`.
SigV2 requests (`AWS AKID:sig`, `?AWSAccessKeyId=..&Signature=..`) are handed to `sigv2`;
SigV4a is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.auth import canonical, checks, sigv2
from gateway.auth.context import (
    PAYLOAD_MODES,
    SHA256_PAYLOAD,
    STREAMING_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthContext,
)
from gateway.auth.presigned import authenticate_query
from gateway.errors import S3Error

__all__ = ["PAYLOAD_MODES", "SHA256_PAYLOAD", "STREAMING_MODES", "STREAMING_SIGNED",
           "STREAMING_SIGNED_TRAILER", "STREAMING_UNSIGNED_TRAILER", "UNSIGNED_PAYLOAD",
           "AuthContext", "authenticate"]

_UNSUPPORTED = "The authorization mechanism you have provided is not supported. Please use " \
               "AWS4-HMAC-SHA256."
_ONE_MECHANISM = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, " \
                 "Signature query string parameter or the Authorization header should be " \
                 "specified"


def authenticate(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                 lookup_secret: Callable[[str], str | None], region: str, now: datetime,
                 max_skew_seconds: int = 900) -> AuthContext | None:
    """Verify the request's SigV4 (or SigV2) signature; None when it carries none (anonymous).

    `raw_path` and `raw_query` are as received (still percent-encoded); `headers` has
    lowercase names with repeated headers joined by ',' (see canonical.headers_from_asgi).
    Raises S3Error with the code AWS answers for each failure.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    pairs = canonical.parse_query(raw_query) if raw_query else []
    names = {n for n, _ in pairs}
    header = headers.get("authorization")
    if header is not None and (b"X-Amz-Algorithm" in names or b"Signature" in names):
        raise S3Error("InvalidArgument", _ONE_MECHANISM,
                      extra={"ArgumentName": "Authorization", "ArgumentValue": header})
    if b"X-Amz-Algorithm" in names:
        return authenticate_query(method, raw_path, pairs, headers, lookup_secret, region, now,
                                  max_skew_seconds)
    if header is not None:
        if header.strip().partition(" ")[0] == sigv2.ALGORITHM:
            return sigv2.authenticate_header(method, raw_path, raw_query, header, headers,
                                             lookup_secret, now, max_skew_seconds)
        return _authenticate_header(method, raw_path, pairs, header, headers, lookup_secret,
                                    region, now, max_skew_seconds)
    if b"AWSAccessKeyId" in names or b"Signature" in names:
        return sigv2.authenticate_query(method, raw_path, raw_query, pairs, headers,
                                        lookup_secret, now)
    return None


# --- Authorization header ------------------------------------------------------------------


def _authenticate_header(method: str, raw_path: str, pairs: list[tuple[bytes, bytes]],
                         header: str, headers: Mapping[str, str],
                         lookup_secret: Callable[[str], str | None], region: str,
                         now: datetime, max_skew: int) -> AuthContext:
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != canonical.ALGORITHM:
        if algorithm == "AWS4-ECDSA-P256-SHA256":
            raise S3Error("InvalidRequest", _UNSUPPORTED)
        raise S3Error("InvalidArgument", "Unsupported Authorization Type",
                      extra={"ArgumentName": "Authorization", "ArgumentValue": header})
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if eq:
            parts[name.strip()] = value.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys():
        raise _malformed("the authorization header requires three components: Credential, "
                         "SignedHeaders, and Signature.")
    access_key, date, scope = checks.parse_credential(parts["Credential"], region, _malformed)
    amz_date, when = _request_time(headers)
    if amz_date[:8] != date:
        raise _malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
    secret = checks.secret(lookup_secret, access_key)
    skew = abs((now - when).total_seconds())
    if skew > max_skew:
        raise S3Error("RequestTimeTooSkewed", extra={
            "RequestTime": amz_date, "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "MaxAllowedSkewMilliseconds": str(max_skew * 1000)})
    declared = headers.get("x-amz-content-sha256")
    if declared is None:
        raise S3Error("InvalidRequest",
                      "Missing required header for this request: x-amz-content-sha256")
    mode, sha = checks.payload_mode(declared)
    signed = checks.signed_headers(parts["SignedHeaders"], headers)
    query = canonical.canonical_query(pairs)
    key = canonical.signing_key(secret, date, region, checks.SERVICE)
    signature = checks.verify_signature(method, raw_path, query, headers, signed, declared,
                                        amz_date, scope, key, parts["Signature"], access_key)
    return AuthContext(access_key, key, scope, amz_date, signature, mode, sha)


def _malformed(detail: str, **extra: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed",
                   f"The authorization header is malformed; {detail}", extra=dict(extra))


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """(ISO 8601 basic timestamp, datetime) from X-Amz-Date, else from Date."""
    raw = headers.get("x-amz-date")
    try:
        if raw is not None:
            stamp = raw.strip()
            return stamp, checks.parse_amz_date(stamp)  # exact form: the stamp is canonical
        if "date" in headers:
            when = parsedate_to_datetime(headers["date"]).astimezone(UTC)
        else:
            raise ValueError("no date")
    except (ValueError, TypeError) as exc:
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or "
                      "x-amz-date header") from exc
    return when.strftime(checks.AMZ_DATE_FORMAT), when
