"""A deliberately separate, minimal SigV4 streaming signer used only by tests, so the
gateway's verifier is checked against an implementation it does not share code with.
It is itself checked against AWS's published example (sigv4-streaming.html)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

EMPTY = hashlib.sha256(b"").hexdigest()


def _h(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str) -> bytes:
    return _h(_h(_h(_h(("AWS4" + secret).encode(), date), region), "s3"), "aws4_request")


def seed_signature(method: str, path: str, headers: dict[str, str], secret: str, amz_date: str,
                   region: str, payload: str) -> tuple[str, str, str]:
    """(signature, signed header list, scope) for the request headers."""
    names = sorted(h.lower() for h in headers)
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    canonical = "\n".join([method, quote(path, safe="/~"), "",
                           "".join(f"{n}:{lower[n]}\n" for n in names), ";".join(names),
                           payload])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret, amz_date[:8], region)
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest(), ";".join(names), scope


def chunked_body(data: bytes, chunk: int, key: bytes, amz_date: str, scope: str,
                 seed: str) -> bytes:
    """aws-chunked body with chained chunk signatures, ending with the 0-length chunk."""
    out, previous = [], seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for piece in pieces:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY,
                         hashlib.sha256(piece).hexdigest()])
        previous = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        out.append(f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n")
    return b"".join(out)


def chunked_length(size: int, chunk: int) -> int:
    sizes = [chunk] * (size // chunk) + ([size % chunk] if size % chunk else []) + [0]
    return sum(len(f"{s:x}") + len(";chunk-signature=") + 64 + 2 + s + 2 for s in sizes)
