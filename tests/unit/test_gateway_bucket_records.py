"""gateway.objects.bucket_records: bucket names, and records in a real embedded map store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.errors import S3Error
from gateway.objects import bucket_records
from gateway.objects.bucket_records import (
    STORE_DOWN,
    BucketRecord,
    BucketRecords,
    validate_bucket_name,
)
from shardgate.bucketmap import imported_key, read_bucket
from shardgate.config import MapSpec
from shardgate.mapstore import Event, MapStore, MapUnavailable, Snapshot
from shardgate.mapstore.embedded import EmbeddedStore


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


class SwitchableStore(MapStore):
    """A real embedded store that can be made unreachable, counting the calls made."""

    def __init__(self, inner: MapStore) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise MapUnavailable("switched off")

    async def read(self, prefix: str) -> Snapshot:
        self._check()
        return await self.inner.read(prefix)

    async def put(self, key: str, value: bytes, *, if_revision: int | None = None,
                  lease: int | None = None) -> bool:
        self._check()
        return await self.inner.put(key, value, if_revision=if_revision, lease=lease)

    async def delete(self, key: str) -> None:
        self._check()
        await self.inner.delete(key)

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        return self.inner.watch(prefix, start_revision)

    async def grant_lease(self, ttl_seconds: int) -> int:
        return await self.inner.grant_lease(ttl_seconds)

    async def refresh_lease(self, lease: int) -> bool:
        return await self.inner.refresh_lease(lease)

    async def close(self) -> None:
        await self.inner.close()


SPEC = MapSpec(refresh_seconds=3600)
Scenario = Callable[..., Awaitable[None]]


class Gateways:
    """Bucket records of several gateway processes over one store, each with its copy."""

    def __init__(self, tmp: Path, ttl: float = 0.0,
                 found: list[dict[str, Any]] | None = None) -> None:
        self.tmp, self.ttl, self.found = tmp, ttl, found or []
        self.store = SwitchableStore(EmbeddedStore(tmp / "map.sqlite"))
        self.imports = 0
        self.started: list[BucketRecords] = []

    async def importer(self) -> list[dict[str, Any]]:
        self.imports += 1
        return self.found

    async def gateway(self, name: str = "g1") -> BucketRecords:
        records = BucketRecords(SPEC, self.ttl, self.importer,
                                copy_path=self.tmp / f"buckets-{name}.json")
        await records.start(self.store)
        self.started.append(records)
        return records

    async def close(self) -> None:
        for records in self.started:
            await records.stop()
        await self.store.close()


def run(tmp: Path, scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        gateways = Gateways(tmp, **options)
        try:
            await scenario(gateways)
        finally:
            await gateways.close()
    asyncio.run(main())


def stored(name: str, owner: str = "alice", incarnation: str = "inc",
           settings: dict | None = None) -> dict[str, Any]:
    return BucketRecord(name, owner, incarnation, 1.0, False, 5, settings or {}).stored()


def test_create_then_get_through_another_gateway(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        first, other = await gws.gateway("g1"), await gws.gateway("g2")
        assert await other.get("photos") is None
        created = await first.create("photos", "alice")
        assert created.owner == "alice" and not created.deleted
        assert len(created.incarnation) == 32
        assert await other.get("photos") == created  # a miss is never cached
        assert await other.get("other") is None
    run(tmp_path, scenario)


def test_create_rejects_bad_names_before_any_io(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        records = await gws.gateway()
        calls = gws.store.calls
        with pytest.raises(S3Error, match="InvalidBucketName"):
            await records.create("Bad_Name", "alice")
        assert gws.store.calls == calls
    run(tmp_path, scenario)


def test_create_existing_bucket(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        records = await gws.gateway()
        await records.create("photos", "alice")
        for owner, code in (("alice", "BucketAlreadyOwnedByYou"),
                            ("bob", "BucketAlreadyExists")):
            with pytest.raises(S3Error) as exc:
                await records.create("photos", owner)
            assert exc.value.code == code and exc.value.status == 409
    run(tmp_path, scenario)


def test_concurrent_creates_on_two_gateways_one_wins(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        one, two = await gws.gateway("g1"), await gws.gateway("g2")
        for attempt in range(5):
            name = f"race-{attempt}"
            results = await asyncio.gather(one.create(name, "alice"), two.create(name, "bob"),
                                           return_exceptions=True)
            won = [r for r in results if isinstance(r, BucketRecord)]
            lost = [r for r in results if isinstance(r, S3Error)]
            assert len(won) == 1 and len(lost) == 1, results
            assert (await one.get(name)) == (await two.get(name)) == won[0]
    run(tmp_path, scenario)


def test_delete_leaves_a_tombstone_and_recreate_gets_new_incarnation(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        records, other = await gws.gateway("g1"), await gws.gateway("g2")
        first = await records.create("photos", "alice")
        await records.delete(first)
        tomb, _ = await read_bucket(gws.store, SPEC, "photos")
        assert tomb is not None and tomb["deleted"] and tomb["stamp"] > first.stamp
        assert await other.get("photos") is None
        second = await other.create("photos", "bob")
        assert second.incarnation != first.incarnation and second.stamp > tomb["stamp"]
        # the first incarnation is gone: deleting it again does not delete the second
        with pytest.raises(S3Error, match="NoSuchBucket"):
            await records.delete(first)
        assert await records.get("photos", fresh=True) == second
    run(tmp_path, scenario)


def test_settings_from_two_gateways_never_undo_each_other(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        one, two = await gws.gateway("g1"), await gws.gateway("g2")
        bucket = await one.create("photos", "alice")
        await asyncio.gather(*(gw.set_setting(bucket, f"s{i}", i)
                               for i in range(8) for gw in (one, two)))
        await one.set_setting(bucket, "versioning", "Enabled")
        got = await two.get("photos", fresh=True)
        assert got is not None and got.setting("versioning") == "Enabled"
        assert {f"s{i}": got.setting(f"s{i}") for i in range(8)} == {f"s{i}": i
                                                                    for i in range(8)}
        await one.delete(bucket)
        again = await two.create("photos", "alice")
        with pytest.raises(S3Error, match="NoSuchBucket"):
            await one.set_setting(bucket, "tags", {"a": "b"})  # the old incarnation
        fresh = await one.get("photos", fresh=True)
        assert fresh == again and fresh is not None and fresh.settings == {}
    run(tmp_path, scenario)


def test_require_and_list_for_owner(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        records = await gws.gateway()
        for name, owner in (("zeta", "alice"), ("alpha", "alice"), ("bobs", "bob"),
                            ("gone", "alice")):
            await records.create(name, owner)
        await records.delete(await records.require("gone"))
        assert (await records.require("alpha")).name == "alpha"
        with pytest.raises(S3Error) as exc:
            await records.require("nothing")
        assert exc.value.code == "NoSuchBucket" and exc.value.extra == {"BucketName": "nothing"}
        other = await gws.gateway("g2")
        assert [r.name for r in await other.list_for("alice")] == ["alpha", "zeta"]
        assert [r.name for r in await other.list_for("bob")] == ["bobs"]
    run(tmp_path, scenario)


def test_volume_held_records_are_imported_once(tmp_path: Path) -> None:
    found = [stored("old", settings={"versioning": {"stamp": 3, "value": "Enabled"}}),
             stored("kept", owner="bob")]

    async def scenario(gws: Gateways) -> None:
        first = await gws.gateway("g1")
        old = await first.require("old")
        assert old.incarnation == "inc" and old.setting("versioning") == "Enabled"
        assert [r.name for r in await first.list_for("bob")] == ["kept"]
        marker = imported_key(SPEC)
        assert marker in (await gws.store.read(marker)).entries
        await first.delete(old)
        # a later gateway neither imports again nor brings the deleted bucket back
        second = await gws.gateway("g2")
        assert await second.get("old") is None and await second.get("kept") is not None
        assert gws.imports == 1
    run(tmp_path, scenario, found=found)


def test_import_waits_for_the_volumes(tmp_path: Path) -> None:
    async def scenario(gws: Gateways) -> None:
        answers: list[Any] = [S3Error("ServiceUnavailable", "too few volumes"),
                              [stored("late")]]

        async def importer() -> list[dict[str, Any]]:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        records = BucketRecords(SPEC, 0.0, importer, copy_path=gws.tmp / "b.json")
        await records.start(gws.store)  # the volumes did not answer: started all the same
        gws.started.append(records)
        assert (await records.require("late")).incarnation == "inc"
    run(tmp_path, scenario)


def test_store_unreachable_serves_the_copy_and_refuses_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bucket_records, "RETRY_STORE_SECONDS", 0.0)  # ask it every time

    async def scenario(gws: Gateways) -> None:
        records = await gws.gateway("g1")
        photos = await records.create("photos", "alice")
        await records.set_setting(photos, "versioning", "Enabled")
        gws.store.down = True
        got = await records.get("photos")
        assert got is not None and got.setting("versioning") == "Enabled"
        assert [r.name for r in await records.list_for("alice")] == ["photos"]
        for change in (records.create("new", "alice"), records.delete(photos),
                       records.set_setting(photos, "tags", {})):
            with pytest.raises(S3Error) as exc:
                await change
            assert exc.value.code == "ServiceUnavailable" and exc.value.status == 503
            assert exc.value.message == STORE_DOWN
        with pytest.raises(S3Error, match="ServiceUnavailable"):
            await records.get("unknown")  # not known here: no NoSuchBucket on a guess
        # a gateway started during the outage serves from its persisted copy
        restarted = BucketRecords(SPEC, 0.0, gws.importer,
                                  copy_path=gws.tmp / "buckets-g1.json")
        await restarted.start(gws.store)
        gws.started.append(restarted)
        assert await restarted.get("photos") == photos
        gws.store.down = False
        assert await restarted.create("new", "alice") is not None
    run(tmp_path, scenario)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_cache_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(bucket_records, "time", SimpleNamespace(
        monotonic=clock.monotonic, time=time.time, time_ns=time.time_ns))

    async def scenario(gws: Gateways) -> None:
        reader, writer = await gws.gateway("reader"), await gws.gateway("writer")
        photos = await writer.create("photos", "alice")
        assert await reader.get("photos") == photos
        calls = gws.store.calls
        await writer.set_setting(photos, "versioning", "Enabled")
        clock.now += 0.9
        cached = await reader.get("photos")  # still cached
        assert cached is not None and cached.setting("versioning") is None
        assert gws.store.calls == calls + 2  # the writer's read and compare-and-set
        fresh = await reader.get("photos", fresh=True)
        assert fresh is not None and fresh.setting("versioning") == "Enabled"
        await writer.delete(photos)
        clock.now += 1.1
        assert await reader.get("photos") is None
    run(tmp_path, scenario, ttl=1.0)
