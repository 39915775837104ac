"""Bucket records: one agreed truth per bucket name, in the cluster map store.

Each creation gets a fresh incarnation id and manifests are keyed by it, so deleting
and recreating a bucket never brings old objects back. Every change is a compare-and-set
on the name's key (shardgate/bucketmap.py), so two gateways never both create a name or
undo each other's settings; deletion leaves a tombstone. A gateway caches a record for
`ttl` and keeps a persisted copy of all of them: while the store is unreachable it
serves lookups from that copy, and bucket changes answer 503 (docs/cluster-map.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.errors import S3Error
from shardgate import jsonio, localcopy
from shardgate.bucketmap import bucket_key, imported_key, read_bucket, read_buckets
from shardgate.config import MapSpec
from shardgate.mapstore import MapStore, MapUnavailable

log = logging.getLogger("shardgate.buckets")

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# Reserved by S3's general purpose bucket naming rules.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


@dataclass(frozen=True)
class BucketRecord:
    name: str
    owner: str
    incarnation: str
    created: float
    deleted: bool
    stamp: int
    # {setting: {"stamp", "value"}} of this incarnation: versioning, tags, ACL, CORS. Each
    # change rewrites the whole record by compare-and-set, so none undoes another.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False,
                                                hash=False)

    def to_dict(self) -> dict:
        record = self.__dict__.copy()
        del record["settings"]
        return record

    def stored(self) -> dict:
        """The record as the map store keeps it (settings included)."""
        return {**self.to_dict(), "settings": self.settings}

    @classmethod
    def from_stored(cls, raw: dict) -> BucketRecord:
        return cls(**{**raw, "settings": raw.get("settings") or {}})

    def setting(self, name: str, default: Any = None) -> Any:
        held = self.settings.get(name)
        return default if held is None else held["value"]


def validate_bucket_name(name: str) -> None:
    """S3 bucket naming rules (general purpose buckets)."""
    if not _NAME.match(name) or ".." in name or _IP.match(name) or ".-" in name \
            or "-." in name or name.startswith(_RESERVED_PREFIXES) \
            or name.endswith(_RESERVED_SUFFIXES):
        raise S3Error("InvalidBucketName", extra={"BucketName": name})



# After the store failed to answer, lookups use the persisted copy for this long before
# asking it again (each ask of a dead store waits out its timeout).
RETRY_STORE_SECONDS = 2.0
STORE_DOWN = ("The cluster map store is unreachable: bucket changes are refused until it "
              "answers again (object reads and writes go on).")
Importer = Callable[[], Awaitable[list[dict[str, Any]]]]


def _stored(records: dict[str, BucketRecord]) -> dict[str, dict]:
    return {name: record.stored() for name, record in records.items()}


class BucketRecords:
    """The bucket records one gateway process sees: `start` before use, `stop` after."""

    def __init__(self, spec: MapSpec, ttl: float, importer: Importer | None = None,
                 copy_path: Path | None = None) -> None:
        self.spec, self.ttl = spec, ttl
        self.importer = importer
        self.copy_path = copy_path or Path(spec.cache_dir) / "buckets-gateway.json"
        self._store: MapStore | None = None
        self._cache: dict[str, tuple[float, BucketRecord]] = {}
        self._known: dict[str, BucketRecord] = {}  # every live record last read; persisted
        self._imported = False
        self._down_until = 0.0
        self._refreshing: asyncio.Task | None = None

    async def start(self, store: MapStore) -> None:
        self._store = store
        self._load_copy()
        with contextlib.suppress(MapUnavailable, S3Error):  # both retried on use
            await self._ensure_imported()
            await self.refresh_known()
        self._refreshing = asyncio.create_task(self._refresh_forever())

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    @property
    def store(self) -> MapStore:
        assert self._store is not None, "BucketRecords.start() first"
        return self._store

    # reads

    async def get(self, name: str, fresh: bool = False) -> BucketRecord | None:
        """The live record for `name`, or None (never existed or deleted)."""
        hit = self._cache.get(name)
        if hit and not fresh and hit[0] > time.monotonic():
            return hit[1]
        if self._store_down():
            return self._from_copy(name)
        # A cached copy expires `ttl` after its read *started*: a change written before
        # then is seen by every gateway within `ttl` of its answer.
        started = time.monotonic()
        try:
            await self._ensure_imported()
            raw, _ = await read_bucket(self.store, self.spec, name)
        except MapUnavailable as exc:
            self._went_down(exc)
            return self._from_copy(name)
        record = None if raw is None or raw["deleted"] else BucketRecord.from_stored(raw)
        self._remember(name, record, started + self.ttl)
        return record

    async def require(self, name: str, fresh: bool = False) -> BucketRecord:
        record = await self.get(name, fresh)
        if record is None:
            raise S3Error("NoSuchBucket", extra={"BucketName": name})
        return record

    async def list_for(self, owner: str) -> list[BucketRecord]:
        if not self._store_down():
            try:
                await self._ensure_imported()
                await self.refresh_known()
            except MapUnavailable as exc:
                self._went_down(exc)
        return sorted((r for r in self._known.values() if r.owner == owner),
                      key=lambda r: r.name)

    async def refresh_known(self) -> None:
        """Read every record into the persisted copy."""
        stored = await read_buckets(self.store, self.spec)
        known = {name: BucketRecord.from_stored(raw) for name, raw in stored.items()
                 if not raw["deleted"]}
        self._down_until = 0.0
        if _stored(known) != _stored(self._known):
            self._known = known
            self._save_copy()

    # changes: each a compare-and-set on the name's key, again on a lost race

    async def create(self, name: str, owner: str) -> BucketRecord:
        validate_bucket_name(name)
        async with self._changing():
            while True:
                raw, revision = await read_bucket(self.store, self.spec, name)
                if raw is not None and not raw["deleted"]:
                    code = ("BucketAlreadyOwnedByYou" if raw["owner"] == owner
                            else "BucketAlreadyExists")
                    raise S3Error(code, extra={"BucketName": name})
                # Stamps only grow, whatever this gateway's wall clock says.
                stamp = max(time.time_ns(), raw["stamp"] + 1 if raw else 0)
                record = BucketRecord(name, owner, uuid.uuid4().hex, time.time(), False,
                                      stamp)
                if await self._put(record, revision):
                    return record

    async def delete(self, record: BucketRecord) -> None:
        """Leave a tombstone of the record's incarnation (a re-creation gets a new one)."""
        async with self._changing():
            while True:
                current, revision = await self._current(record)
                tombstone = replace(current, deleted=True, settings={},
                                    stamp=max(time.time_ns(), current.stamp + 1))
                if await self._put(tombstone, revision):
                    return

    async def set_setting(self, record: BucketRecord, setting: str, value: Any) -> None:
        """Change one setting of the bucket's incarnation, keeping every other one."""
        async with self._changing():
            while True:
                current, revision = await self._current(record)
                held = current.settings.get(setting)
                stamp = max(time.time_ns(), held["stamp"] + 1 if held else 0)
                changed = replace(current, settings={
                    **current.settings, setting: {"stamp": stamp, "value": value}})
                if await self._put(changed, revision):
                    return

    async def _current(self, record: BucketRecord) -> tuple[BucketRecord, int]:
        """The stored record of `record`'s incarnation (NoSuchBucket if it was deleted or
        replaced since) and its revision."""
        raw, revision = await read_bucket(self.store, self.spec, record.name)
        if raw is None or raw["deleted"] or raw["incarnation"] != record.incarnation:
            raise S3Error("NoSuchBucket", extra={"BucketName": record.name})
        return BucketRecord.from_stored(raw), revision

    async def _put(self, record: BucketRecord, revision: int) -> bool:
        if not await self.store.put(bucket_key(self.spec, record.name),
                                    jsonio.dumps(record.stored()), if_revision=revision):
            return False
        self._remember(record.name, None if record.deleted else record,
                       time.monotonic() + self.ttl)
        return True

    def _remember(self, name: str, record: BucketRecord | None, expires: float) -> None:
        """Keep what the store said in the copy and, until `expires`, the cache (a miss is
        never cached: it is asked again, so a creation elsewhere shows at once)."""
        self._note(name, record)
        if record is None:
            self._cache.pop(name, None)
        else:
            self._cache[name] = (expires, record)

    @contextlib.asynccontextmanager
    async def _changing(self):  # noqa: ANN202 - an async context manager
        """Bucket changes need the store: 503 ServiceUnavailable while it is away."""
        if self._store_down():
            raise S3Error("ServiceUnavailable", STORE_DOWN)
        try:
            await self._ensure_imported()
            yield
        except MapUnavailable as exc:
            self._went_down(exc)
            raise S3Error("ServiceUnavailable", STORE_DOWN) from exc

    # the one-time import

    async def _ensure_imported(self) -> None:
        """Copy the records volumes held into the store, once per cluster: the first
        gateway to find no marker does it (put-if-absent, so a second one is harmless and a
        name created or deleted since is left alone)."""
        if self._imported:
            return
        marker = imported_key(self.spec)
        if (await self.store.read(marker)).entries.get(marker) is None:
            records = await self.importer() if self.importer is not None else []
            copied = 0
            for raw in records:
                copied += await self.store.put(bucket_key(self.spec, raw["name"]),
                                               jsonio.dumps(raw), if_revision=0)
            await self.store.put(marker, jsonio.dumps({"at": time.time(), "found": len(records),
                                                       "copied": copied}), if_revision=0)
            log.info("bucket records imported from the volumes: %d found, %d copied",
                     len(records), copied)
        self._imported = True

    # the persisted copy, for when the store is away

    def _store_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _went_down(self, exc: Exception) -> None:
        if not self._store_down():
            log.warning("map store unreachable: bucket lookups use this gateway's copy, "
                        "bucket changes answer 503: %s", exc)
        self._down_until = time.monotonic() + RETRY_STORE_SECONDS

    def _from_copy(self, name: str) -> BucketRecord:
        record = self._known.get(name)
        if record is None:
            raise S3Error("ServiceUnavailable", "The cluster map store is unreachable and "
                          "this gateway's copy of the bucket records has no such bucket.")
        return record

    def _note(self, name: str, record: BucketRecord | None) -> None:
        held = self._known.get(name)
        if (held and held.stored()) == (record and record.stored()):
            return
        if record is None:
            self._known.pop(name, None)
        else:
            self._known[name] = record
        self._save_copy()

    def _load_copy(self) -> None:
        raw = localcopy.load(self.copy_path, "bucket records")
        try:
            if raw is not None:
                self._known = {r["name"]: BucketRecord.from_stored(r)
                               for r in raw["buckets"]}
        except (KeyError, TypeError) as exc:
            log.warning("ignoring unreadable bucket copy %s: %r", self.copy_path, exc)

    def _save_copy(self) -> None:
        localcopy.save(self.copy_path, {"buckets": [r.stored() for r in self._known.values()]},
                       "bucket records")

    async def _refresh_forever(self) -> None:
        """Keep the copy current with changes made through other gateways."""
        while True:
            await asyncio.sleep(self.spec.refresh_seconds)
            try:
                await self._ensure_imported()
                await self.refresh_known()
            except MapUnavailable as exc:
                self._went_down(exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the copy's refresh must not stop the process
                log.exception("bucket copy refresh failed")
