"""Bucket records: kept on every volume, written and read with a majority quorum.

Each creation gets a fresh incarnation id and manifests are keyed by it, so deleting
and recreating a bucket never brings old objects back. Deletion writes a tombstone
record with a newer stamp. Records are cached briefly per process.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import S3Error, quorum_lost
from gateway.objects.cluster import Cluster
from gateway.objects.fanout import answered, first_answers

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
    # {setting: {"stamp", "value"}} of this incarnation: versioning, tags. Each setting
    # is written on its own, newest stamp wins, so two changes never undo each other.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False,
                                                hash=False)

    def to_dict(self) -> dict:
        record = self.__dict__.copy()
        del record["settings"]
        return record

    def setting(self, name: str, default: Any = None) -> Any:
        held = self.settings.get(name)
        return default if held is None else held["value"]


def validate_bucket_name(name: str) -> None:
    """S3 bucket naming rules (general purpose buckets)."""
    if not _NAME.match(name) or ".." in name or _IP.match(name) or ".-" in name \
            or "-." in name or name.startswith(_RESERVED_PREFIXES) \
            or name.endswith(_RESERVED_SUFFIXES):
        raise S3Error("InvalidBucketName", extra={"BucketName": name})


class BucketRecords:
    def __init__(self, cluster: Cluster, ttl: float) -> None:
        self.cluster = cluster
        self.ttl = ttl
        self._cache: dict[str, tuple[float, BucketRecord | None]] = {}

    async def _gather(self, calls: list) -> list:
        """Answers of at least a majority of volumes (majority writes meet majority reads)."""
        results = await first_answers(dict(enumerate(calls)), self.cluster.majority,
                                      cancel_rest=False)
        ok = list(answered(results).values())
        if len(ok) < self.cluster.majority:
            raise quorum_lost("Too few storage volumes answered.")
        return ok

    async def _newest(self, name: str) -> BucketRecord | None:
        """The newest record for `name` on a majority, tombstones included."""
        answered = await self._gather([self.cluster.volumes.get_bucket(vid, name)
                                       for vid in self.cluster.volume_ids])
        found = [BucketRecord(**r) for r in answered if r]
        if not found:
            return None
        newest = max(found, key=lambda r: r.stamp)
        settings: dict[str, dict[str, Any]] = {}
        for record in found:
            if record.incarnation != newest.incarnation:
                continue
            for name, held in record.settings.items():
                if name not in settings or held["stamp"] > settings[name]["stamp"]:
                    settings[name] = held
        return BucketRecord(**{**newest.to_dict(), "settings": settings})

    async def get(self, name: str, fresh: bool = False) -> BucketRecord | None:
        """The live record for `name`, or None (never existed or deleted)."""
        hit = self._cache.get(name)
        if hit and not fresh and hit[0] > time.monotonic():
            return hit[1]
        # A cached copy expires `ttl` after its read *started*: a change written before
        # then is seen by every gateway within `ttl` of its answer (set_setting).
        started = time.monotonic()
        record = await self._newest(name)
        if record is not None and record.deleted:
            record = None
        self._cache[name] = (started + self.ttl, record)
        return record

    async def require(self, name: str, fresh: bool = False) -> BucketRecord:
        record = await self.get(name, fresh)
        if record is None:
            raise S3Error("NoSuchBucket", extra={"BucketName": name})
        return record

    async def _write(self, record: BucketRecord) -> None:
        answered = await self._gather([self.cluster.volumes.put_bucket(vid, record.to_dict())
                                       for vid in self.cluster.volume_ids])
        del answered
        self._cache[record.name] = (time.monotonic() + self.ttl,
                                    None if record.deleted else record)

    async def create(self, name: str, owner: str) -> BucketRecord:
        validate_bucket_name(name)
        existing = await self._newest(name)
        if existing is not None and not existing.deleted:
            code = "BucketAlreadyOwnedByYou" if existing.owner == owner else "BucketAlreadyExists"
            raise S3Error(code, extra={"BucketName": name})
        # Stamps only grow, whatever this gateway's wall clock says.
        stamp = max(time.time_ns(), existing.stamp + 1 if existing else 0)
        record = BucketRecord(name, owner, uuid.uuid4().hex, time.time(), False, stamp)
        await self._write(record)
        return record

    async def delete(self, record: BucketRecord) -> None:
        tombstone = BucketRecord(record.name, record.owner, record.incarnation, record.created,
                                 True, max(time.time_ns(), record.stamp + 1))
        await self._write(tombstone)

    async def set_setting(self, record: BucketRecord, setting: str, value: Any) -> None:
        """Write one setting of the bucket's incarnation on a majority of volumes."""
        current = await self.get(record.name, fresh=True)
        if current is None or current.incarnation != record.incarnation:
            raise S3Error("NoSuchBucket", extra={"BucketName": record.name})
        held = current.settings.get(setting)
        stamp = max(time.time_ns(), held["stamp"] + 1 if held else 0)
        payload = {"incarnation": record.incarnation, "stamp": stamp, "value": value}
        await self._gather([self.cluster.volumes.put_bucket_setting(vid, record.name,
                                                                    setting, payload)
                            for vid in self.cluster.volume_ids])
        self._cache.pop(record.name, None)

    async def list_for(self, owner: str) -> list[BucketRecord]:
        answered = await self._gather([self.cluster.volumes.list_buckets(vid)
                                       for vid in self.cluster.volume_ids])
        newest: dict[str, BucketRecord] = {}
        for records in answered:
            for raw in records:
                rec = BucketRecord(**raw)
                if rec.name not in newest or rec.stamp > newest[rec.name].stamp:
                    newest[rec.name] = rec
        return sorted((r for r in newest.values() if not r.deleted and r.owner == owner),
                      key=lambda r: r.name)
