"""Verify a SigV2 request (`AWS AKID:sig` header or presigned query) into an AuthContext.

Old clients, boto3 with `Config(signature_version="s3")` and the Ceph s3-tests auth_aws2
tests still sign this way. Follows "Signing and Authenticating REST Requests" (S3
Developer Guide, RESTAuthentication). SigV2 signs no payload: the context is
UNSIGNED-PAYLOAD (a signed hex x-amz-content-sha256 is still checked) and Content-MD5,
itself signed, is what protects a body; aws-chunked bodies need a SigV4 seed and are refused.
The resource is the path as sent: the gateway routes path-style only (`/bucket/key`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_plus

from gateway.auth import canonical, checks
from gateway.auth.context import STREAMING_MODES, UNSIGNED_PAYLOAD, AuthContext
from gateway.errors import S3Error

ALGORITHM = "AWS"
# Sub-resources that belong to the CanonicalizedResource: botocore's HmacV1Auth.QSAOfInterest.
SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
    "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
    "partNumber", "policy", "replication", "requestPayment", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "response-content-language",
    "response-content-type", "response-expires", "restore", "select", "select-type",
    "storageClass", "tagging", "torrent", "uploadId", "uploads", "versionId", "versioning",
    "versions", "website",
})
QUERY_PARAMS = ("AWSAccessKeyId", "Signature", "Expires")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def authenticate_header(method: str, raw_path: str, raw_query: str, header: str,
                        headers: Mapping[str, str], lookup_secret: Callable[[str], str | None],
                        now: datetime, max_skew: int) -> AuthContext:
    """Verify `Authorization: AWS AKID:signature`, dated by x-amz-date or else Date."""
    access_key, colon, provided = header.strip()[len(ALGORITHM):].strip().partition(":")
    if not colon or not access_key or not provided or " " in access_key:
        raise S3Error("InvalidArgument", "AWS authorization header is invalid.  Expected "
                      "AwsAccessKeyId:signature",
                      extra={"ArgumentName": "Authorization", "ArgumentValue": header})
    raw_time, when = _request_time(headers)
    secret = checks.secret(lookup_secret, access_key)
    if abs((now - when).total_seconds()) > max_skew:
        raise S3Error("RequestTimeTooSkewed", extra={
            "RequestTime": raw_time, "ServerTime": now.strftime(_ISO),
            "MaxAllowedSkewMilliseconds": str(max_skew * 1000)})
    mode, sha = _payload_mode(headers)
    amz = _amz_headers(headers, [])
    # botocore signs the Date header even beside x-amz-date; the S3 guide says to leave the
    # Date line empty then. Either way x-amz-date is signed among the amz headers.
    dates = [headers.get("date", "").strip()]
    if "x-amz-date" in headers and dates[0]:
        dates.append("")
    candidates = [string_to_sign(method, headers.get("content-md5", ""),
                                 canonical.as_signed(headers.get("content-type", "")), date,
                                 amz, resource)
                  for date in dates for resource in resources(raw_path, raw_query)]
    signature = _verify(secret, candidates, provided.strip(), access_key)
    return AuthContext(access_key, b"", "", when.strftime(checks.AMZ_DATE_FORMAT), signature,
                       mode, sha)


def authenticate_query(method: str, raw_path: str, raw_query: str,
                       pairs: list[tuple[bytes, bytes]], headers: Mapping[str, str],
                       lookup_secret: Callable[[str], str | None],
                       now: datetime) -> AuthContext:
    """Verify a presigned URL carrying AWSAccessKeyId, Signature and Expires.

    botocore moves the signed x-amz-*, Content-Type and Content-MD5 headers into the query
    (lowercased); they count as headers here unless the request sends the header itself.
    """
    params: dict[str, str] = {}
    for name, value in pairs:
        key_name = name.decode("latin-1")
        if key_name not in params:
            params[key_name] = value.decode("utf-8", "replace")
    if not all(params.get(name) for name in QUERY_PARAMS):
        raise S3Error("AccessDenied", "Query-string authentication requires the Signature, "
                      "Expires and AWSAccessKeyId parameters")
    access_key, expires_raw = params["AWSAccessKeyId"], params["Expires"]
    # A `+` sent raw in the signature reads as a space; base64 never holds a space.
    provided = params["Signature"].replace(" ", "+")
    try:
        expires = int(expires_raw)
    except ValueError as exc:
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch): "
                      f"{expires_raw}") from exc
    secret = checks.secret(lookup_secret, access_key)
    if now.timestamp() > expires:
        raise S3Error("AccessDenied", "Request has expired", extra={
            "Expires": _epoch_iso(expires), "ServerTime": now.strftime(_ISO)})
    mode, sha = _payload_mode(headers)
    in_query = {k.lower(): v for k, v in params.items() if k.lower().startswith("x-amz-")}
    amz = _amz_headers(headers, sorted(in_query.items()))
    md5 = headers.get("content-md5", params.get("content-md5", ""))
    ctype = (canonical.as_signed(headers["content-type"]) if "content-type" in headers
             else params.get("content-type", ""))
    candidates = [string_to_sign(method, md5, ctype, expires_raw, amz, resource)
                  for resource in resources(raw_path, raw_query)]
    signature = _verify(secret, candidates, provided, access_key)
    return AuthContext(access_key, b"", "", now.strftime(checks.AMZ_DATE_FORMAT), signature,
                       mode, sha, presigned=True)


def string_to_sign(method: str, content_md5: str, content_type: str, date: str,
                   amz_headers: list[tuple[str, str]], resource: str) -> str:
    """METHOD, Content-MD5, Content-Type, Date, CanonicalizedAmzHeaders, the resource."""
    amz = "".join(f"{name}:{value}\n" for name, value in amz_headers)
    return (f"{method.upper()}\n{content_md5.strip()}\n{content_type.strip()}\n{date}\n"
            f"{amz}{resource}")


def resources(raw_path: str, raw_query: str) -> list[str]:
    """The CanonicalizedResource: the path as sent plus the signed sub-resources.

    A bucket's own path also in the form `/bucket/`, which botocore signs (its auth_path)
    while it sends `/bucket`.
    """
    path = canonical.canonical_uri(raw_path)
    paths = [path, f"{path}/"] if path.count("/") == 1 and path != "/" else [path]
    return [p + sub_resources(raw_query) for p in paths]


def sub_resources(raw_query: str) -> str:
    """`?acl&versionId=1`: the signed sub-resources sorted by name, values decoded.

    Names and values are decoded exactly as the router decodes them (`+` is a space), so
    what is signed is what is served: an encoded name (`%61cl`) or a second `versionId`
    is a sub-resource here too, and a signature made without it does not match. Names
    keep their `=` (or its absence) and their order among equal names, as botocore
    signs them (botocore sends sub-resource names unencoded and values percent-encoded).
    """
    picked: list[tuple[str, str]] = []
    for piece in raw_query.split("&") if raw_query else []:
        raw_name, eq, value = piece.partition("=")
        name = unquote_plus(raw_name)
        if name in SUBRESOURCES:
            picked.append((name, f"={unquote_plus(value)}" if eq else ""))
    picked.sort(key=lambda item: item[0])
    return "?" + "&".join(name + value for name, value in picked) if picked else ""


def sign(secret: str, string: str) -> str:
    """Base64 HMAC-SHA1 of a string to sign."""
    digest = hmac.new(secret.encode("utf-8"), canonical.signed_bytes(string),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _verify(secret: str, candidates: list[str], provided: str, access_key: str) -> str:
    """The provided signature if it matches one string to sign (constant time compare)."""
    given = provided.encode("utf-8")
    for sts in candidates:
        if hmac.compare_digest(sign(secret, sts).encode("ascii"), given):
            return provided
    raise S3Error("SignatureDoesNotMatch", extra={
        "AWSAccessKeyId": access_key, "StringToSign": canonical.shown(candidates[0]),
        "SignatureProvided": provided})


def _amz_headers(headers: Mapping[str, str],
                 from_query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sorted (name, value) of every x-amz-* header; repeats are already joined by ','."""
    amz = {name: value.strip() for name, value in from_query}
    amz.update((name, canonical.as_signed(value).strip()) for name, value in headers.items()
               if name.startswith("x-amz-"))
    return sorted(amz.items())


def _payload_mode(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """UNSIGNED-PAYLOAD, or SHA256 for a declared (and signed) hex hash; never aws-chunked."""
    encodings = headers.get("content-encoding", "").lower().split(",")
    declared = headers.get("x-amz-content-sha256")
    if "aws-chunked" in (e.strip() for e in encodings) or (
            declared is not None and declared.strip() in STREAMING_MODES):
        raise S3Error("InvalidRequest", "aws-chunked payloads require AWS Signature Version "
                      "4 (AWS4-HMAC-SHA256).")
    if declared is None:
        return UNSIGNED_PAYLOAD, None
    return checks.payload_mode(declared)


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """(the value as sent, datetime) from x-amz-date, else Date: RFC 1123 or ISO 8601 basic."""
    raw = (headers.get("x-amz-date", headers.get("date")) or "").strip()
    try:
        when = _parse_date(raw)
    except (ValueError, TypeError, IndexError, OverflowError):
        when = None
    if when is None or when < _EPOCH:
        raise S3Error("AccessDenied", "AWS authentication requires a valid Date or "
                      "x-amz-date header")
    return raw, when


def _parse_date(raw: str) -> datetime:
    """An HTTP date (what SigV2 clients send) or, failing that, an ISO 8601 basic one."""
    try:
        when = parsedate_to_datetime(raw)
    except (ValueError, TypeError, IndexError):
        when = checks.parse_amz_date(raw)
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _epoch_iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime(_ISO)
    except (OverflowError, OSError, ValueError):
        return str(seconds)
