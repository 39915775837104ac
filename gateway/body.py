"""The request body as the handler sees it: payload bytes, verified as they stream.

aws-chunked bodies are decoded (chunk signatures checked, trailers collected); a body
whose SHA-256 was signed fails at its end if it differs, which is before any commit, so
a tampered body is never stored. The readers themselves live in gateway.auth.payload.
A body that stopped arriving ends in RequestTimeout (the clock is gateway.body_idle).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from gateway.auth.context import AuthContext
from gateway.auth.payload import body_reader
from gateway.body_idle import body_timed_out
from gateway.errors import S3Error


class RequestBody:
    def __init__(self, request: Request, headers: dict[str, str],
                 auth: AuthContext | None) -> None:
        self._reader = body_reader(_received(request), auth, headers)

    @property
    def trailers(self) -> dict[str, str]:
        return self._reader.trailers

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._reader.__aiter__()


async def _received(request: Request) -> AsyncIterator[bytes]:
    """The raw body. A client gone quiet raises RequestTimeout, an S3 error the writer
    aborts its staging on like any other; a client really gone stays ClientDisconnect."""
    try:
        async for data in request.stream():
            yield data
    except ClientDisconnect:
        if body_timed_out(request.scope):
            raise S3Error("RequestTimeout") from None
        raise
