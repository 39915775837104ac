"""Bearer-JWT check in front of every route: only gateways holding the shared secret get in.

GET/HEAD need a `read` token, everything else a `write` token, both for this volume
(`aud`). Gateways reuse each token for half its life, so verified tokens are remembered
until they expire instead of being decoded on every request.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from shardgate.tokens import TokenError, verify_token

READ_METHODS = frozenset({"GET", "HEAD"})
CACHE_SIZE = 1024


class TokenAuth:
    def __init__(self, app: ASGIApp, secret: str, volume_id: str) -> None:
        self.app = app
        self.secret = secret
        self.volume_id = volume_id
        self._verified: dict[tuple[str, str], float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        needed = "read" if scope.get("method", "GET") in READ_METHODS else "write"
        problem = self.check(_authorization(scope), needed)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _deny(send, problem)
        else:
            await send({"type": "websocket.close", "code": 1008})

    def check(self, header: str | None, needed: str) -> str | None:
        """None when the header carries a token good for `needed`, else why not."""
        if not header:
            return "missing bearer token"
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "malformed Authorization header"
        now = time.time()
        expires = self._verified.get((token, needed))
        if expires is not None and expires > now:
            return None
        try:
            claims = verify_token(self.secret, token, self.volume_id, needed)
        except TokenError as exc:
            return f"invalid token: {exc}"
        if len(self._verified) >= CACHE_SIZE:
            self._verified = {k: v for k, v in self._verified.items() if v > now}
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
        self._verified[(token, needed)] = float(claims["exp"])
        return None


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return value.decode("latin-1")
    return None


async def _deny(send: Send, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="shardgate-volume"'),
    ]})
    await send({"type": "http.response.body", "body": body})
