"""The map store on etcd (v3 API over gRPC, through the aetcd client).

Endpoints given as IP addresses go into one gRPC channel, so a member that dies is
skipped by the channel itself; endpoints given as host names (gRPC lists only addresses)
each get a channel in turn, the next one after a failure. Either way the client keeps
working while etcd has a quorum. Every call is bounded by a
timeout; any failure to reach etcd becomes MapUnavailable, which callers treat as "keep
serving from the local copy".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import aetcd
import aetcd.exceptions

from shardgate.mapstore import Compacted, Entry, Event, MapStore, MapUnavailable, Snapshot


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"etcd endpoint {endpoint!r} must be host:port")
    return host, int(port)


def _is_ipv4(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False


def channel_targets(endpoints: tuple[str, ...]) -> list[tuple[str, int]]:
    """The (host, port) pairs aetcd joins into gRPC targets: one target listing every
    address (`ipv4:a:1,b:2`, the last port split off) when all are IPv4 addresses, else
    one per endpoint."""
    if not endpoints:
        raise ValueError("etcd needs at least one endpoint (host:port)")
    pairs = [_split(e) for e in endpoints]
    if len(pairs) == 1 or not all(_is_ipv4(h) for h, _ in pairs):
        return pairs
    head = ",".join(f"{h}:{p}" for h, p in pairs[:-1])
    return [(f"ipv4:{head},{pairs[-1][0]}", pairs[-1][1])]


class EtcdStore(MapStore):
    def __init__(self, endpoints: tuple[str, ...], timeout_seconds: float = 3.0) -> None:
        self._targets = channel_targets(endpoints)
        self._endpoints = endpoints
        self._timeout = timeout_seconds
        self._turn = 0
        self._client = self._connect()

    def _connect(self) -> aetcd.Client:
        host, port = self._targets[self._turn % len(self._targets)]
        return aetcd.Client(host=host, port=port, timeout=self._timeout,
                            options={"grpc.initial_reconnect_backoff_ms": 200,
                                     "grpc.max_reconnect_backoff_ms": 1000})

    def _unavailable(self, exc: BaseException) -> MapUnavailable:
        if len(self._targets) > 1:  # the next call tries the next endpoint
            old, self._turn = self._client, self._turn + 1
            self._client = self._connect()
            task = asyncio.ensure_future(old.close())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return MapUnavailable(f"etcd at {', '.join(self._endpoints)}: {exc!r}")

    async def _call(self, make, again: bool = False):
        """`make()`'s call, its failures as MapUnavailable. With `again` (an idempotent
        call), one whose connection was cut under it (a member died) is sent once more:
        the channel goes on through the next address, so a dead follower costs nothing."""
        try:
            return await asyncio.wait_for(make(), self._timeout)
        except aetcd.exceptions.ConnectionFailedError as exc:
            if not again:
                raise self._unavailable(exc) from exc
        except (aetcd.exceptions.ClientError, TimeoutError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return await self._call(make)

    async def read(self, prefix: str) -> Snapshot:
        result = await self._call(lambda: self._client.get_prefix(prefix.encode()),
                                  again=True)
        entries = {kv.key.decode(): Entry(kv.value, kv.mod_revision) for kv in result}
        return Snapshot(result.header.revision, entries)

    async def put(self, key: str, value: bytes, *, if_revision: int | None = None,
                  lease: int | None = None) -> bool:
        if if_revision is None:  # the same value twice is the same state
            await self._call(lambda: self._client.put(key.encode(), value, lease=lease),
                             again=True)
            return True
        client = self._client
        ok, _ = await self._call(lambda: client.transaction(
            compare=[client.transactions.mod(key.encode()) == if_revision],
            success=[client.transactions.put(key.encode(), value, lease=lease)],
            failure=[]))
        return bool(ok)

    async def delete(self, key: str) -> None:
        await self._call(lambda: self._client.delete(key.encode()), again=True)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        watch = await self._call(lambda: self._client.watch_prefix(
            prefix.encode(), start_revision=start_revision))
        try:
            async for event in watch:
                deleted = event.kind == aetcd.rtypes.EventKind.DELETE
                yield [Event(event.kv.key.decode(), None if deleted else event.kv.value,
                             event.kv.mod_revision)]
        except aetcd.exceptions.RevisionCompactedError as exc:
            raise Compacted(str(exc)) from exc
        except (aetcd.exceptions.ClientError, OSError) as exc:
            raise self._unavailable(exc) from exc
        finally:
            with contextlib.suppress(Exception):  # the channel may already be gone
                await asyncio.wait_for(watch.cancel(), 1.0)

    async def grant_lease(self, ttl_seconds: int) -> int:
        lease = await self._call(lambda: self._client.lease(ttl_seconds))
        return int(lease.id)

    async def refresh_lease(self, lease: int) -> bool:
        answer = await self._call(lambda: self._client.refresh_lease(lease), again=True)
        return getattr(answer, "TTL", 1) > 0

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a channel to a dead etcd
            await asyncio.wait_for(self._client.close(), 2.0)
