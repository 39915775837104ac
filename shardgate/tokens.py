"""Short-lived JWTs that gateways attach to every volume-server request.

A token names the volume it is for (`aud`) and what it may do (`scope`: read or
write), so a token captured from one volume or for a read cannot write elsewhere.
"""

from __future__ import annotations

import time

import jwt

ISSUER = "shardgate-gateway"
SCOPES = ("read", "write")


class TokenError(Exception):
    """The token is missing, malformed, expired or not good for this request."""


def mint_token(secret: str, volume_id: str, scope: str, ttl_seconds: int = 120) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": volume_id, "scope": scope, "iat": now,
              "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str, volume_id: str, scope: str) -> dict:
    """Return the claims, or raise TokenError. A write token also allows reads."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], audience=volume_id,
                            issuer=ISSUER, options={"require": ["exp", "aud", "iss"]})
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    granted = claims.get("scope")
    if granted != scope and not (granted == "write" and scope == "read"):
        raise TokenError(f"token scope {granted!r} does not allow {scope!r}")
    return claims


class TokenCache:
    """Mints one token per (volume, scope) and reuses it until half its life is gone."""

    def __init__(self, secret: str, ttl_seconds: int = 120) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    def get(self, volume_id: str, scope: str) -> str:
        now = time.monotonic()
        hit = self._cache.get((volume_id, scope))
        if hit and hit[0] > now:
            return hit[1]
        token = mint_token(self._secret, volume_id, scope, self._ttl)
        self._cache[(volume_id, scope)] = (now + self._ttl / 2, token)
        return token
