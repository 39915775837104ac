"""The transport under the gateway's volume client: one pooled aiohttp session, scoped
JWTs, the ring epoch every write carries, and what an answer of each status means.

Transport failures, timeouts and 5xx answers become VolumeUnavailable here, so the data
path reasons only about "this volume answered" or "it did not".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import aiohttp

from gateway.objects.volume_errors import (
    StaleEpoch,
    VolumeNotFound,
    VolumeRejected,
    VolumeUnavailable,
)
from shardgate import jsonio
from shardgate.config import ClusterConfig
from shardgate.mapview import EPOCH_HEADER
from shardgate.tokens import TokenCache
from shardgate.versionid import observe_version_id


def decoded(body: bytes) -> Any:
    """A volume's JSON answer, decoded once (None if it is not JSON). Volumes report the
    newest version id they have committed as "clock"; moving our clock past it means a
    gateway whose wall clock is behind still issues newer ids."""
    try:
        value = jsonio.loads(body)
    except ValueError:
        return None
    clock = value.get("clock") if isinstance(value, dict) else None
    if isinstance(clock, str) and clock:
        observe_version_id(clock)
    return value


# The ring epoch of the placement whose write this task is doing, asked at each send
# (Cluster.placing sets it): every write request carries it, so a volume that knows a
# newer ring refuses a write placed by an older one, however late it is sent. Unset (the
# rebalancer's moves, tools): the newest epoch this gateway knows.
PLACED_EPOCH: ContextVar[Callable[[], int] | None] = ContextVar("placed_epoch", default=None)


# A pooled keep-alive connection to a volume that has since restarted fails like this on
# its first use; a read is retried once on a fresh connection (a refused connection is a
# volume that is down, and is not retried).
def _stale_connection(exc: BaseException | None) -> bool:
    return (isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError)
            and not isinstance(exc, aiohttp.ClientConnectorError))


class ArchiveStream:
    """An open ranged read of one fragment archive; `read_exactly` pulls framed fragments."""

    def __init__(self, volume_id: str, response: aiohttp.ClientResponse) -> None:
        self.volume_id = volume_id
        self._response = response

    async def read_exactly(self, n: int, timeout: float = 10.0) -> bytes:
        """The next n bytes; a volume that stalls this long counts as failed."""
        try:
            return await asyncio.wait_for(self._response.content.readexactly(n), timeout)
        except (TimeoutError, aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            raise VolumeUnavailable(self.volume_id, f"archive read failed: {exc!r}") from exc

    def close(self) -> None:
        self._response.release()
        self._response.close()


class VolumeTransport:
    """Requests to volumes by id; the routes themselves are VolumeClient's."""

    def __init__(self, config: ClusterConfig, connect_timeout: float = 3.0,
                 metadata_timeout: float = 10.0) -> None:
        self._urls = {v.id: v.url.rstrip("/") for v in config.volumes}
        self.epoch = 1  # the ring epoch every write carries (see follow)
        self.on_stale_epoch: Callable[[], None] | None = None
        self._tokens = TokenCache(config.jwt_secret, config.token_ttl_seconds)
        # No request sets aiohttp's sock_read. Its timer outlives the response that set
        # it: a response whose last bytes arrive while reading is paused leaves it
        # running on the pooled connection, and it then fails whatever request uses that
        # connection next ("Timeout on reading data from socket"), a stage that sends
        # for longer than the timer included. Reads are timed in our code instead: the
        # wait for an answer's headers (`_open`), `latest`'s rows, and each fragment
        # (`ArchiveStream.read_exactly`).
        #
        # A stage streams for as long as its body does: no clock runs while it does.
        # Progress is watched instead: a client write's by its writer (a lane that takes
        # no fragment for a while, or no answer long after its last byte, is dropped), a
        # heal's or a move's by stage_watch.py.
        self._connect_only = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                                     sock_connect=connect_timeout)
        # Metadata calls are small: a volume silent this long is treated as down.
        self._metadata_timeout = aiohttp.ClientTimeout(total=metadata_timeout,
                                                       connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None

    def follow(self, urls: dict[str, str], epoch: int) -> None:
        """The volumes' addresses and the ring epoch from a newer cluster map: every
        write carries the epoch, and a volume that has seen a newer one refuses it."""
        self._urls = {vid: url.rstrip("/") for vid, url in urls.items()}
        self.epoch = epoch

    def write_epoch(self) -> int:
        """The epoch a write sent now carries: its placement's (PLACED_EPOCH), else ours."""
        placed = PLACED_EPOCH.get()
        return self.epoch if placed is None else placed()

    def _stale_epoch(self, newer: object) -> None:
        """A volume knows a newer ring epoch than ours: have the map re-read now."""
        if isinstance(newer, int) and newer > self.epoch and self.on_stale_epoch:
            self.on_stale_epoch()

    def _url(self, volume_id: str) -> str:
        try:
            return self._urls[volume_id]
        except KeyError:
            raise VolumeUnavailable(volume_id, "not in the cluster map") from None

    async def start(self) -> None:
        # No per-host cap: every streaming GET holds k connections for its whole life.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._connect_only,
                                              auto_decompress=False)

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    def _headers(self, volume_id: str, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.get(volume_id, scope)}"}

    async def _request(self, volume_id: str, method: str, path: str, *,
                       params: dict[str, Any] | None = None, json_body: Any = None,
                       data: Any = None, headers: dict[str, str] | None = None,
                       allow_404: bool = False, reads_only: bool = False,
                       epoch: int | None = None) -> Any:
        """One request; one that only reads (every GET, and a POST said to) is sent
        again once on a new connection when the pooled one turns out closed. A write
        carries `epoch`, or else `write_epoch()`."""
        assert self._session is not None, "VolumeClient.start() was not awaited"
        if method in ("GET", "HEAD") or reads_only:
            try:
                return await self._request_once(volume_id, method, path, params=params,
                                                json_body=json_body, headers=headers,
                                                allow_404=allow_404, epoch=epoch)
            except VolumeUnavailable as exc:
                if not _stale_connection(exc.__cause__):
                    raise
        return await self._request_once(volume_id, method, path, params=params,
                                        json_body=json_body, data=data, headers=headers,
                                        allow_404=allow_404, epoch=epoch)

    async def _request_once(self, volume_id: str, method: str, path: str, *,
                            params: dict[str, Any] | None = None, json_body: Any = None,
                            data: Any = None, headers: dict[str, str] | None = None,
                            allow_404: bool = False, epoch: int | None = None) -> Any:
        assert self._session is not None
        scope = "read" if method in ("GET", "HEAD") else "write"
        all_headers = self._headers(volume_id, scope)
        if scope == "write":
            all_headers[EPOCH_HEADER] = str(self.write_epoch() if epoch is None else epoch)
        if headers:
            all_headers.update(headers)
        url = self._url(volume_id) + path
        try:
            timeout = self._connect_only if data is not None else self._metadata_timeout
            if json_body is not None:
                data = jsonio.dumps(json_body)
                all_headers["Content-Type"] = "application/json"
            async with self._session.request(method, url, params=params, data=data,
                                             headers=all_headers, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status == 404 and allow_404:
                    return None
                if resp.status >= 400:
                    raise self._failure(volume_id, resp.status, body)
                value = decoded(body) if body else None
                if resp.status == 204 or not body:
                    return {}
                if value is None:
                    raise VolumeUnavailable(volume_id, "answer is not JSON")
                return value
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise VolumeUnavailable(volume_id, repr(exc)) from exc

    def _failure(self, volume_id: str, status: int, body: bytes) -> Exception:
        """What an answer of `status` >= 400 is: a volume down (5xx), a missing thing
        (404), a ring epoch we lag (409 StaleEpoch: the map is re-read), or a refusal."""
        text = body.decode(errors="replace")
        value = decoded(body) if body else None  # a refusal may carry the volume's clock
        if status >= 500:
            return VolumeUnavailable(volume_id, f"HTTP {status}")
        if status == 404:
            return VolumeNotFound(text)
        if status == 409 and isinstance(value, dict) and value.get("code") == "StaleEpoch":
            self._stale_epoch(value.get("epoch"))
            return StaleEpoch(volume_id, status, text)
        return VolumeRejected(volume_id, status, text)

    # -- fragment archives ---------------------------------------------------------------

    async def _open(self, volume_id: str, path: str, params: dict[str, str] | None,
                    headers: dict[str, str]) -> aiohttp.ClientResponse:
        """A read whose body the caller streams: its headers, after one retry on a
        pooled connection the volume had closed."""
        assert self._session is not None
        headers = {**self._headers(volume_id, "read"), **headers}
        url = self._url(volume_id) + path
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self._metadata_timeout.total):
                    return await self._session.get(url, params=params, headers=headers,
                                                   timeout=self._connect_only)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                if attempt == 2 or not _stale_connection(exc):
                    raise VolumeUnavailable(volume_id, repr(exc)) from exc
        raise AssertionError("unreachable")
