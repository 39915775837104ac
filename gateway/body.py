"""The request body as the handler sees it: payload bytes, verified as they stream.

aws-chunked bodies are decoded (chunk signatures checked, trailers collected); a body
whose SHA-256 was signed fails at its end if it differs, which is before any commit, so
a tampered body is never stored. The readers themselves live in gateway.auth.payload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from gateway.auth.context import AuthContext
from gateway.auth.payload import body_reader


class RequestBody:
    def __init__(self, request: Request, headers: dict[str, str],
                 auth: AuthContext | None) -> None:
        self._reader = body_reader(request.stream(), auth, headers)

    @property
    def trailers(self) -> dict[str, str]:
        return self._reader.trailers

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._reader.__aiter__()
