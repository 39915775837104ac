"""gateway.objects.bucket_records: bucket names, and majority-quorum records over fake volumes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.errors import S3Error
from gateway.objects import bucket_records
from gateway.objects.bucket_records import BucketRecord, BucketRecords, validate_bucket_name


@pytest.mark.parametrize("name", [
    "abc", "my-bucket", "my.bucket.name", "a1b2c3", "1bucket", "bucket-1", "a" * 63,
    "xn-a", "a-s3alias-b", "192.168.5.4a", "a.b-c.d",
])
def test_valid_bucket_names(name: str) -> None:
    validate_bucket_name(name)


@pytest.mark.parametrize("name", [
    "", "ab", "a" * 64, "MyBucket", "my_bucket", "-bucket", "bucket-", ".bucket", "bucket.",
    "my..bucket", "192.168.5.4", "xn--bucket", "bucket-s3alias", "my bucket", "bücket",
    "bucket/", "a.-b", "a-.b",
])
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(S3Error) as exc:
        validate_bucket_name(name)
    assert exc.value.code == "InvalidBucketName" and exc.value.extra == {"BucketName": name}


@pytest.mark.parametrize("name", ["sthree-bucket", "amzn-s3-demo-bucket", "bucket--ol-s3",
                                  "bucket.mrap", "bucket--x-s3"])
def test_reserved_prefixes_and_suffixes(name: str) -> None:
    with pytest.raises(S3Error, match="InvalidBucketName"):
        validate_bucket_name(name)


class FakeVolumes:
    """Bucket records per volume; volumes in `down` raise like an unreachable server."""

    def __init__(self, ids: list[str]) -> None:
        self.records: dict[str, dict[str, dict]] = {vid: {} for vid in ids}
        self.down: set[str] = set()
        self.calls: Counter[str] = Counter()

    def _check(self, op: str, volume_id: str) -> None:
        self.calls[op] += 1
        if volume_id in self.down:
            raise ConnectionError(f"{volume_id} is down")

    async def get_bucket(self, volume_id: str, name: str) -> dict | None:
        self._check("get", volume_id)
        await asyncio.sleep(0)
        return self.records[volume_id].get(name)

    async def put_bucket(self, volume_id: str, record: dict) -> dict:
        self._check("put", volume_id)
        self.records[volume_id][record["name"]] = dict(record)
        return {}

    async def list_buckets(self, volume_id: str) -> list[dict]:
        self._check("list", volume_id)
        return list(self.records[volume_id].values())


def make(volumes: int = 5, ttl: float = 0.0) -> tuple[BucketRecords, FakeVolumes]:
    ids = [f"v{i}" for i in range(1, volumes + 1)]
    fake = FakeVolumes(ids)
    cluster = SimpleNamespace(volumes=fake, volume_ids=ids, majority=volumes // 2 + 1)
    return BucketRecords(cluster, ttl), fake  # type: ignore[arg-type]


def record(name: str, stamp: int, owner: str = "alice", deleted: bool = False,
           incarnation: str = "inc") -> dict[str, Any]:
    return BucketRecord(name, owner, incarnation, 1.0, deleted, stamp).to_dict()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_create_then_get() -> None:
    records, fake = make()
    created = run(records.create("photos", "alice"))
    assert created.owner == "alice" and not created.deleted and len(created.incarnation) == 32
    assert all(fake.records[vid]["photos"] == created.to_dict() for vid in fake.records)
    other_gateway = BucketRecords(records.cluster, 0.0)
    assert run(other_gateway.get("photos")) == created
    assert run(other_gateway.get("other")) is None


def test_create_rejects_bad_names_before_any_io() -> None:
    records, fake = make()
    with pytest.raises(S3Error, match="InvalidBucketName"):
        run(records.create("Bad_Name", "alice"))
    assert not fake.calls


def test_create_existing_bucket() -> None:
    records, _ = make()
    run(records.create("photos", "alice"))
    with pytest.raises(S3Error) as exc:
        run(records.create("photos", "alice"))
    assert exc.value.code == "BucketAlreadyOwnedByYou" and exc.value.status == 409
    with pytest.raises(S3Error) as exc:
        run(records.create("photos", "bob"))
    assert exc.value.code == "BucketAlreadyExists" and exc.value.status == 409


def test_delete_writes_a_tombstone_and_recreate_gets_new_incarnation() -> None:
    records, fake = make()
    first = run(records.create("photos", "alice"))
    run(records.delete(first))
    tomb = fake.records["v1"]["photos"]
    assert tomb["deleted"] and tomb["stamp"] > first.stamp
    assert run(records.get("photos", fresh=True)) is None
    second = run(records.create("photos", "bob"))
    assert second.incarnation != first.incarnation and second.stamp > tomb["stamp"]
    assert run(records.get("photos", fresh=True)) == second


def test_newest_stamp_wins() -> None:
    records, fake = make()
    fake.records["v1"]["b1"] = record("b1", 10, incarnation="old")
    fake.records["v2"]["b1"] = record("b1", 30, incarnation="new")
    fake.records["v3"]["b1"] = record("b1", 20, incarnation="mid")
    got = run(records.get("b1"))
    assert got is not None and got.incarnation == "new" and got.stamp == 30


def test_newer_tombstone_hides_older_records() -> None:
    records, fake = make()
    fake.records["v1"]["b1"] = record("b1", 10)
    fake.records["v2"]["b1"] = record("b1", 10)
    fake.records["v3"]["b1"] = record("b1", 11, deleted=True)
    assert run(records.get("b1")) is None
    fake.records["v4"]["b1"] = record("b1", 12, incarnation="again")
    got = run(records.get("b1", fresh=True))
    assert got is not None and got.incarnation == "again"


def test_majority_must_answer() -> None:
    records, fake = make(volumes=5)
    run(records.create("photos", "alice"))
    fake.down = {"v1", "v2"}
    assert run(records.get("photos", fresh=True)) is not None
    fake.down = {"v1", "v2", "v3"}
    for call in (records.get("photos", fresh=True), records.create("other", "alice"),
                 records.list_for("alice")):
        with pytest.raises(S3Error) as exc:
            run(call)
        assert exc.value.code == "ServiceUnavailable" and exc.value.status == 503


def test_write_needs_majority_of_puts() -> None:
    records, fake = make(volumes=3)
    existing = run(records.create("photos", "alice"))

    async def reads_everywhere(volume_id: str, name: str) -> dict | None:
        return fake.records[volume_id].get(name)

    fake.get_bucket = reads_everywhere  # type: ignore[method-assign]
    fake.down = {"v1", "v2"}
    with pytest.raises(S3Error, match="ServiceUnavailable"):
        run(records.delete(existing))


def test_require() -> None:
    records, _ = make()
    run(records.create("photos", "alice"))
    assert run(records.require("photos")).name == "photos"
    with pytest.raises(S3Error) as exc:
        run(records.require("nothing"))
    assert exc.value.code == "NoSuchBucket" and exc.value.extra == {"BucketName": "nothing"}


def test_list_for_owner() -> None:
    records, fake = make()
    fake.records["v1"]["zeta"] = record("zeta", 5)
    fake.records["v2"]["alpha"] = record("alpha", 5)
    fake.records["v3"]["alpha"] = record("alpha", 7, incarnation="newer")
    fake.records["v1"]["gone"] = record("gone", 5)
    fake.records["v2"]["gone"] = record("gone", 9, deleted=True)
    fake.records["v4"]["bobs"] = record("bobs", 5, owner="bob")
    listed = run(records.list_for("alice"))
    assert [r.name for r in listed] == ["alpha", "zeta"]
    assert listed[0].incarnation == "newer"
    assert [r.name for r in run(records.list_for("bob"))] == ["bobs"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_cache_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(bucket_records, "time", SimpleNamespace(
        monotonic=clock.monotonic, time=time.time, time_ns=time.time_ns))
    records, fake = make(volumes=3, ttl=1.0)
    fake.records["v1"]["b1"] = record("b1", 1)
    assert run(records.get("b1")) is not None
    assert fake.calls["get"] == 3
    fake.records["v1"]["b1"] = record("b1", 2, deleted=True)
    clock.now += 0.9
    assert run(records.get("b1")) is not None          # still cached
    assert fake.calls["get"] == 3
    assert run(records.get("b1", fresh=True)) is None  # fresh bypasses the cache
    assert fake.calls["get"] == 6
    fake.records["v2"]["b1"] = record("b1", 3, incarnation="back")
    clock.now += 0.5
    assert run(records.get("b1")) is None              # the miss is cached too
    clock.now += 0.6
    got = run(records.get("b1"))
    assert got is not None and got.incarnation == "back"
    assert fake.calls["get"] == 9


def test_own_writes_refresh_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(bucket_records, "time", SimpleNamespace(
        monotonic=clock.monotonic, time=time.time, time_ns=time.time_ns))
    records, fake = make(volumes=3, ttl=60.0)
    assert run(records.get("photos")) is None
    created = run(records.create("photos", "alice"))
    calls = fake.calls["get"]
    assert run(records.get("photos")) == created
    run(records.delete(created))
    assert run(records.get("photos")) is None
    assert fake.calls["get"] == calls
