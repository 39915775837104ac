"""The cluster map's store: a small, revisioned key-value interface that etcd provides.

Membership, ring epochs and the agreements between gateways live in etcd on multi-host
clusters (`etcd.py`) and in one SQLite file on a single host (`embedded.py`, what
`shardgate dev` uses with no extra server). Both give the same four things the map needs:
a consistent read of a prefix at one revision, a compare-and-set on a key's revision,
watches that resume from a revision (or say it was compacted), and leases that expire a
key whose owner stopped refreshing it (docs/cluster-map.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass


class MapUnavailable(Exception):
    """The store did not answer: the caller keeps its local copy and retries later."""


class Compacted(Exception):
    """A watch asked for history the store no longer keeps: read everything again."""


@dataclass(frozen=True)
class Entry:
    value: bytes
    mod_revision: int


@dataclass(frozen=True)
class Snapshot:
    """Every key under a prefix as of one store revision."""

    revision: int
    entries: dict[str, Entry]


@dataclass(frozen=True)
class Event:
    """One change: `value` None is a deletion (or a lease that expired)."""

    key: str
    value: bytes | None
    revision: int


class MapStore(ABC):
    """What the map needs of etcd. Keys are str, values bytes; every write gets a new
    store-wide revision, and a key's mod_revision is the revision that last wrote it."""

    @abstractmethod
    async def read(self, prefix: str) -> Snapshot:
        """Every key under `prefix`, consistently, with the store's revision."""

    @abstractmethod
    async def put(self, key: str, value: bytes, *, if_revision: int | None = None,
                  lease: int | None = None) -> bool:
        """Write `key`; with `if_revision`, only if its mod_revision still is that (0: the
        key must not exist). False when the comparison failed (nothing written)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove `key` (no error if absent)."""

    @abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Changes under `prefix` from `start_revision` on, in revision order; raises
        Compacted if that revision is gone, MapUnavailable when the store goes away."""

    @abstractmethod
    async def grant_lease(self, ttl_seconds: int) -> int:
        """A lease id; keys put with it vanish `ttl_seconds` after its last refresh."""

    @abstractmethod
    async def refresh_lease(self, lease: int) -> bool:
        """Keep the lease alive; False if it already expired (its keys are gone)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and files."""
