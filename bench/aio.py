"""A small asyncio GET client (aiohttp, botocore's SigV4 signer, UNSIGNED-PAYLOAD) for
many concurrent whole-object reads: awscrt cannot do those, since a single-request GET
(type DEFAULT) buffers the whole body in memory before handing it over (100 readers of a
256 MiB object ran the machine out of memory)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import aiohttp
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.crt import REGION, Batch, Outcome
from bench.servers import Target

CLIENT_LABEL = "aiohttp"
_UNSIGNED = SimpleNamespace(s3={"payload_signing_enabled": False})


def signed_headers(target: Target, method: str, url: str) -> dict[str, str]:
    """SigV4 headers for a body-less request, payload UNSIGNED-PAYLOAD."""
    request = AWSRequest(method=method, url=url)
    request.context["client_config"] = _UNSIGNED
    auth = S3SigV4Auth(Credentials(target.access_key, target.secret_key), "s3", REGION)
    auth.add_auth(request)
    return dict(request.headers.items())


async def _get(session: aiohttp.ClientSession, target: Target, path: str) -> Outcome:
    url = target.endpoint + path
    outcome = Outcome(start=time.perf_counter())
    try:
        async with session.get(url, headers=signed_headers(target, "GET", url)) as resp:
            outcome.status = resp.status
            outcome.content_length = resp.content_length
            outcome.etag = resp.headers.get("ETag", "")
            while chunk := await resp.content.readany():
                outcome.nbytes += len(chunk)
    except (TimeoutError, aiohttp.ClientError) as exc:
        outcome.error = repr(exc)[:300]
    outcome.end = time.perf_counter()
    if not outcome.error and outcome.status not in (200, 206):
        outcome.error = f"HTTP {outcome.status}"
    return outcome


def concurrent_gets(target: Target, path: str, readers: int) -> Batch:
    """`readers` GETs of `path` at once, one connection each; bodies only counted."""

    async def main() -> Batch:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            start = time.perf_counter()
            outcomes = await asyncio.gather(*(_get(session, target, path)
                                              for _ in range(readers)))
            return Batch(list(outcomes), time.perf_counter() - start)

    return asyncio.run(main())
