"""Verification steps shared by the header and the presigned SigV4 forms."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from gateway.auth import canonical
from gateway.auth.context import SHA256_PAYLOAD, STREAMING_MODES, UNSIGNED_PAYLOAD
from gateway.errors import S3Error

SERVICE = "s3"
TERMINAL = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_AMZ_DATE = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")


def parse_amz_date(raw: str) -> datetime:
    """X-Amz-Date's ISO 8601 basic form (AMZ_DATE_FORMAT, exactly) as a UTC datetime, else
    ValueError. Every signed request parses one; `datetime.strptime` took about 2 % of a
    small PUT's gateway time."""
    match = _AMZ_DATE.fullmatch(raw)
    if match is None:
        raise ValueError(f"not an ISO 8601 basic timestamp: {raw!r}")
    return datetime(*map(int, match.groups()), tzinfo=UTC)


def parse_credential(value: str, region: str,
                     error: Callable[..., S3Error]) -> tuple[str, str, str]:
    """AKID/date/region/s3/aws4_request -> (access key, date, scope), checking our region."""
    pieces = value.strip().rsplit("/", 4)
    if len(pieces) != 5 or not pieces[0] or not re.fullmatch(r"\d{8}", pieces[1]):
        raise error('the Credential is mal-formed; expecting '
                    '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    access_key, date, cred_region, service, terminal = pieces
    if cred_region != region:
        raise error(f"the region '{cred_region}' is wrong; expecting '{region}'", Region=region)
    if service != SERVICE:
        raise error(f"incorrect service '{service}'. This endpoint belongs to '{SERVICE}'.")
    if terminal != TERMINAL:
        raise error(f"incorrect terminal '{terminal}'. This endpoint uses '{TERMINAL}'.")
    return access_key, date, f"{date}/{cred_region}/{service}/{terminal}"


def secret(lookup_secret: Callable[[str], str | None], access_key: str) -> str:
    """The access key's secret, or InvalidAccessKeyId."""
    found = lookup_secret(access_key)
    if found is None:
        raise S3Error("InvalidAccessKeyId", extra={"AWSAccessKeyId": access_key})
    return found


def payload_mode(declared: str) -> tuple[str, str | None]:
    """(payload mode, declared hex SHA-256 or None) from x-amz-content-sha256."""
    value = declared.strip()
    if value in (UNSIGNED_PAYLOAD, *STREAMING_MODES):
        return value, None
    if _HEX64.fullmatch(value):
        return SHA256_PAYLOAD, value.lower()
    raise S3Error("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-"
                  "TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
                  extra={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": declared})


def signed_headers(value: str, headers: Mapping[str, str]) -> list[str]:
    """The SignedHeaders list, refusing a request that sent headers it did not sign.

    `host` must be signed, and so must every x-amz-* header sent, in the header form as in
    a presigned URL: S3 refuses both, since an unsigned x-amz-* header could be added or
    changed by anyone on the path (x-amz-meta-*, x-amz-copy-source, x-amz-acl). botocore,
    the AWS CLI, the other AWS SDKs and the CRT signer sign every x-amz-* header they send.
    """
    signed = [name.strip().lower() for name in value.split(";") if name.strip()]
    listed = set(signed)
    missing = [] if "host" in listed else ["host"]
    missing += sorted(n for n in headers if n.startswith("x-amz-") and n not in listed)
    if missing:
        raise S3Error("AccessDenied", "There were headers present in the request which were "
                      "not signed", extra={"HeadersNotSigned": ", ".join(missing)})
    return signed


def verify_signature(method: str, raw_path: str, query: str, headers: Mapping[str, str],
                     signed: list[str], payload_hash: str, amz_date: str, scope: str,
                     key: bytes, provided: str, access_key: str) -> str:
    """Compare the provided signature with ours (constant time); return it on success.

    The path is tried as sent and, if different, re-encoded with AWS's rules: a client that
    sent a reserved character raw signed it encoded. Both decode to the same key.
    """
    provided = provided.strip().lower()
    uris = [canonical.canonical_uri(raw_path)]
    reencoded = canonical.reencoded_uri(raw_path)
    if reencoded != uris[0]:
        uris.append(reencoded)
    well_formed = _HEX64.fullmatch(provided) is not None
    tried: list[tuple[str, str]] = []
    for uri in uris:
        creq = canonical.canonical_request(method, uri, query, headers, signed, payload_hash)
        sts = canonical.string_to_sign(amz_date, scope, creq)
        if well_formed and hmac.compare_digest(canonical.sign(key, sts), provided):
            return provided
        tried.append((creq, sts))
    creq, sts = tried[0]
    raise S3Error("SignatureDoesNotMatch", extra={
        "AWSAccessKeyId": access_key, "StringToSign": sts, "SignatureProvided": provided,
        "CanonicalRequest": canonical.shown(creq)})
