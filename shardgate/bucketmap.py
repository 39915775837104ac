"""Where bucket records live in the cluster map store, and how they are read from it.

One key per bucket name holds the newest record of that name (a deleted bucket keeps a
tombstone, so a re-creation is a compare-and-set on it); one marker key says the records
volumes held before the map store had them were imported. Gateways read and write these
(gateway/objects/bucket_records.py); `shardgate admin` and tests read them.
"""

from __future__ import annotations

from typing import Any

from shardgate import jsonio
from shardgate.config import MapSpec
from shardgate.mapstore import MapStore

BUCKETS = "buckets/"
IMPORTED = "buckets-imported"


def bucket_key(spec: MapSpec, name: str) -> str:
    return f"{spec.prefix}{BUCKETS}{name}"


def imported_key(spec: MapSpec) -> str:
    return spec.prefix + IMPORTED


async def read_bucket(store: MapStore, spec: MapSpec,
                      name: str) -> tuple[dict[str, Any] | None, int]:
    """The stored record of `name` (tombstones included) and its revision (None, 0 if the
    name was never used)."""
    key = bucket_key(spec, name)
    entry = (await store.read(key)).entries.get(key)  # a prefix read: keep the exact key
    if entry is None:
        return None, 0
    return jsonio.loads(entry.value), entry.mod_revision


async def read_buckets(store: MapStore, spec: MapSpec) -> dict[str, dict[str, Any]]:
    """Every stored record by name, tombstones included, as of one store revision."""
    prefix = spec.prefix + BUCKETS
    snapshot = await store.read(prefix)
    return {key[len(prefix):]: jsonio.loads(entry.value)
            for key, entry in snapshot.entries.items()}
