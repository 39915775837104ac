"""SigV4 canonical request, string to sign and signing key, built as S3 builds them.

Follows "Create a canonical request for Signature Version 4" (AWS General Reference) with
the S3 differences: the URI path is used as sent (encoded once, never normalised, so keys
with `//`, `./` or `%2F` keep their meaning) and the query string is decoded and re-encoded.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# RFC 3986 unreserved characters; `quote` always keeps letters, digits and "_.-~".
_UNRESERVED = "-_.~"
_SPACES = re.compile(r"[ \t]+")


def uri_encode(raw: bytes) -> str:
    """AWS URI encoding: unreserved characters kept, every other byte as %XX (upper case)."""
    return quote(raw, safe=_UNRESERVED)


def canonical_uri(raw_path: str) -> str:
    """The path exactly as the client sent it (S3 encodes once and does not normalise)."""
    path = raw_path.partition("?")[0]
    return path or "/"


def reencoded_uri(raw_path: str) -> str:
    """The path decoded and re-encoded segment by segment with AWS's rules.

    A client that sends a reserved character raw (say `!` or `=`) still signs it encoded;
    `%2F` inside a segment stays `%2F`. Decoding the result gives the same key as the raw path.
    """
    path = canonical_uri(raw_path)
    return "/".join(uri_encode(unquote_to_bytes(seg)) for seg in path.split("/"))


def parse_query(raw_query: str) -> list[tuple[bytes, bytes]]:
    """Decoded (name, value) pairs; `+` is a space, as in form encoding (and `parse_qsl`)."""
    pairs: list[tuple[bytes, bytes]] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((unquote_to_bytes(name.replace("+", " ")),
                      unquote_to_bytes(value.replace("+", " "))))
    return pairs


def canonical_query(pairs: Iterable[tuple[bytes, bytes]], exclude: str | None = None) -> str:
    """Names and values AWS-encoded, sorted by name then value; `exclude` drops one name."""
    drop = exclude.encode() if exclude else None
    encoded = sorted((uri_encode(n), uri_encode(v)) for n, v in pairs if n != drop)
    return "&".join(f"{n}={v}" for n, v in encoded)


def trim_value(value: str) -> str:
    """SigV4 Trimall: strip both ends and collapse inner runs of spaces (and tabs) to one."""
    return _SPACES.sub(" ", value).strip(" \t")


def headers_from_asgi(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI header pairs -> {lowercase name: value}; repeats joined by ',' as SigV4 signs them."""
    out: dict[str, str] = {}
    for name_b, value_b in raw:
        name = name_b.decode("latin-1").lower()
        value = value_b.decode("latin-1").strip(" \t")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def as_signed(value: str) -> str:
    """A header value as its client signed it. Values arrive one character per byte
    (latin-1), but a signature covers the bytes themselves: clients sign the text whose
    UTF-8 is what they sent (botocore sends a non-ASCII value as UTF-8). So the bytes are
    read again as UTF-8, and those that are not UTF-8 kept as escapes that `signed_bytes`
    turns back into the same bytes. A value that did not come off the wire (a character
    past U+00FF) is used as it is."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", "surrogateescape")


def signed_bytes(text: str) -> bytes:
    """The bytes of a canonical request or string to sign (see `as_signed`)."""
    return text.encode("utf-8", "surrogateescape")


def shown(text: str) -> str:
    """A canonical request or string to sign as an error body can carry it."""
    return signed_bytes(text).decode("utf-8", "replace")


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    """`name:value\\n` for every signed header, in the order given (already sorted)."""
    lines = []
    for name in signed:
        lines.append(f"{name}:{trim_value(as_signed(headers.get(name, '')))}\n")
    return "".join(lines)


def canonical_request(method: str, uri: str, query: str, headers: Mapping[str, str],
                      signed: list[str], payload_hash: str) -> str:
    return "\n".join((method.upper(), uri, query, canonical_headers(headers, signed),
                      ";".join(signed), payload_hash))


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(signed_bytes(canonical)).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """kSigning = HMAC chain over date, region, service, "aws4_request"; one per day per key."""
    k = _hmac(f"AWS4{secret}".encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def sign(key: bytes, string: str) -> str:
    """Hex HMAC-SHA256 of a string to sign."""
    return hmac.new(key, string.encode("utf-8"), hashlib.sha256).hexdigest()
