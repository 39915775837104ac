"""Presigned URLs: SigV4 carried in the query string (X-Amz-Algorithm, X-Amz-Signature, ...).

Follows "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)" in the
S3 API reference (sigv4-query-string-auth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from gateway.auth import canonical, checks
from gateway.auth.context import UNSIGNED_PAYLOAD, AuthContext
from gateway.errors import S3Error

MAX_PRESIGN_EXPIRES = 604800  # one week, as S3
QUERY_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
                "X-Amz-SignedHeaders", "X-Amz-Expires")


def authenticate_query(method: str, raw_path: str, pairs: list[tuple[bytes, bytes]],
                       headers: Mapping[str, str], lookup_secret: Callable[[str], str | None],
                       region: str, now: datetime, max_skew: int) -> AuthContext:
    """Verify a presigned request whose decoded query `pairs` hold X-Amz-Algorithm."""
    params: dict[str, str] = {}
    for name, value in pairs:
        key_name = name.decode("latin-1")
        if key_name in QUERY_PARAMS and key_name not in params:
            params[key_name] = value.decode("utf-8", "replace")
    if len(params) != len(QUERY_PARAMS):
        raise _query_error("Query-string authentication version 4 requires the "
                           "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                           "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
    if params["X-Amz-Algorithm"] != canonical.ALGORITHM:
        raise _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    access_key, date, scope = checks.parse_credential(
        params["X-Amz-Credential"], region,
        lambda detail, **extra: _query_error(
            f"Error parsing the X-Amz-Credential parameter; {detail}", **extra))
    amz_date = params["X-Amz-Date"]
    try:
        when = checks.parse_amz_date(amz_date)
    except ValueError as exc:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format "
                           "\"yyyyMMdd'T'HHmmss'Z'\"") from exc
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError as exc:
        raise _query_error("X-Amz-Expires should be a number") from exc
    if expires < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise _query_error("X-Amz-Expires must be less than a week (in seconds) that is "
                           f"{MAX_PRESIGN_EXPIRES}")
    if date != amz_date[:8]:
        raise _query_error("Error parsing the X-Amz-Credential parameter; Invalid credential "
                           "date. Date is not the same as X-Amz-Date.")
    secret = checks.secret(lookup_secret, access_key)
    if (when - now).total_seconds() > max_skew:
        raise S3Error("AccessDenied", "Request is not valid yet")
    if now > when + timedelta(seconds=expires):
        raise S3Error("AccessDenied", "Request has expired", extra={
            "X-Amz-Expires": str(expires),
            "Expires": (when + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
    declared = headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    mode, sha = checks.payload_mode(declared)
    signed = checks.signed_headers(params["X-Amz-SignedHeaders"], headers)
    query = canonical.canonical_query(pairs, exclude="X-Amz-Signature")
    key = canonical.signing_key(secret, date, region, checks.SERVICE)
    signature = checks.verify_signature(method, raw_path, query, headers, signed, declared,
                                        amz_date, scope, key, params["X-Amz-Signature"],
                                        access_key)
    return AuthContext(access_key, key, scope, amz_date, signature, mode, sha, presigned=True)


def _query_error(message: str, **extra: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", message, extra=dict(extra))
