"""Conditional requests (RFC 9110 section 13, with S3's precedence rules).

s3transfer sends If-Match on every ranged part of a download, so these matter for
`aws s3 cp`. S3: If-Match true + If-Unmodified-Since false -> proceed; If-None-Match
false + If-Modified-Since true -> 304.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from gateway.errors import S3Error

NOT_MODIFIED = 304


def _etags(value: str) -> list[str]:
    return [v.strip().removeprefix("W/").strip('"') for v in value.split(",") if v.strip()]


def _matches(value: str, etag: str) -> bool:
    tags = _etags(value)
    return "*" in tags or etag in tags


def _date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def evaluate(headers: dict[str, str], etag: str, last_modified: float) -> int | None:
    """Return 304 for "not modified", raise PreconditionFailed, or None to proceed."""
    modified = int(last_modified)  # HTTP dates have whole seconds
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _matches(if_match, etag):
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})
    else:
        since = _date(headers.get("if-unmodified-since", ""))
        if since is not None and modified > since:
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Unmodified-Since"})
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _matches(if_none_match, etag):
            return NOT_MODIFIED
    else:
        since = _date(headers.get("if-modified-since", ""))
        if since is not None and modified <= since:
            return NOT_MODIFIED
    return None
