"""The cluster map with real processes: a dev cluster on a real etcd (three members),
members recorded with their epoch, one etcd member killed and then all three down while
boto3 keeps reading and writing, a gateway restarted during the outage, and a volume that
restarts on another port reaching the gateways through the map's watch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from shardgate import jsonio
from shardgate.bucketmap import bucket_key, imported_key, read_bucket
from shardgate.mapstore.etcd import EtcdStore
from shardgate.mapview import map_key, open_store
from tests.e2e.cluster import DevCluster, free_port, wait_http
from tests.e2e.conftest import USERS, own_cluster, write_users
from tests.e2e.etcd import Etcd
from tests.e2e.helpers import status_of, volume_put
from tests.e2e.rebalance_helpers import admin, start_volume, wait_moved

pytestmark = pytest.mark.e2e


def read_prefix(endpoints: list[str], prefix: str) -> dict[str, dict]:
    async def read():
        store = EtcdStore(tuple(endpoints))
        try:
            snap = await store.read(prefix)
            return {k: jsonio.loads(e.value) for k, e in snap.entries.items()}
        finally:
            await store.close()
    return asyncio.run(read())


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s")


@pytest.fixture(scope="module")
def etcd_trio(tmp_path_factory):
    trio = Etcd(tmp_path_factory.mktemp("etcd-trio"), members=3).start()
    yield trio
    trio.stop()


@pytest.fixture(scope="module")
def etcd_cluster(tmp_path_factory, etcd_trio):
    root = tmp_path_factory.mktemp("on-etcd")
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=["--etcd", ",".join(etcd_trio.endpoints)]).start()
    try:
        yield dev
    finally:
        dev.stop()


def test_the_map_lives_in_etcd_with_every_member_on_its_epoch(etcd_cluster, etcd_trio):
    s3 = etcd_cluster.client(*USERS["alice"])
    name = f"m-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"on etcd")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"on etcd"
    spec = etcd_cluster.config.map
    assert spec.store == "etcd"
    records = read_prefix(etcd_trio.endpoints, spec.prefix)
    cluster_map = records[map_key(spec)]
    assert cluster_map["epoch"] == 1
    assert sorted(v["id"] for v in cluster_map["volumes"]) == etcd_cluster.volume_ids
    bucket = records[f"{spec.prefix}buckets/{name}"]  # the one agreed bucket record
    assert bucket["owner"] == "alice-id" and not bucket["deleted"]
    assert f"{spec.prefix}buckets-imported" in records

    def members_once_seven() -> dict | None:
        found = read_prefix(etcd_trio.endpoints, spec.prefix + "members/")
        return found if len(found) >= 7 else None
    members = wait_for(members_once_seven, what="7 member records")
    assert {v["epoch"] for v in members.values()} == {1}
    assert sum("/volume/" in k for k in members) == 6
    assert sum("/gateway/" in k for k in members) >= 1


def test_etcd_down_changes_nothing_for_object_reads_and_writes(etcd_cluster, etcd_trio):
    s3 = etcd_cluster.client(*USERS["alice"], retries={"max_attempts": 1})
    name = f"o-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    empty = f"e-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=empty)
    s3.put_object(Bucket=name, Key="before", Body=b"0" * 200_000)
    etcd_trio.kill_member("m0")  # one of three: etcd keeps its quorum
    s3.put_object(Bucket=name, Key="one-down", Body=b"1" * 200_000)
    assert s3.get_object(Bucket=name, Key="before")["Body"].read() == b"0" * 200_000
    for member in list(etcd_trio.procs):
        etcd_trio.kill_member(member)  # all three down
    try:
        refused = admin(etcd_cluster, "volume", "add", "v9", "--url", "http://127.0.0.1:1")
        assert refused.returncode == 1 and "unreachable, nothing changed" in refused.stderr
        for i in range(5):
            s3.put_object(Bucket=name, Key=f"outage-{i}", Body=bytes([i]) * 300_000)
            assert s3.get_object(Bucket=name, Key=f"outage-{i}")["Body"].read() == \
                bytes([i]) * 300_000
        # A gateway started during the outage serves from the persisted copy of the map.
        second = etcd_cluster.second_gateway()
        other = etcd_cluster.client_at(second, *USERS["alice"], retries={"max_attempts": 1})
        assert other.get_object(Bucket=name, Key="outage-3")["Body"].read() == \
            bytes([3]) * 300_000
        other.put_object(Bucket=name, Key="from-second", Body=b"second")
        assert s3.get_object(Bucket=name, Key="from-second")["Body"].read() == b"second"
        # Bucket lookups answer from each gateway's copy; bucket changes are refused.
        for client in (s3, other):
            client.head_bucket(Bucket=empty)
            assert {name, empty} <= {b["Name"] for b in client.list_buckets()["Buckets"]}
        refusals = {
            "create": lambda: s3.create_bucket(Bucket=f"n-{uuid.uuid4().hex[:10]}"),
            "delete": lambda: s3.delete_bucket(Bucket=empty),
            "versioning": lambda: other.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}),
            "tagging": lambda: s3.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        }
        for change, call in refusals.items():
            with pytest.raises(ClientError) as refused_change:
                call()
            error = refused_change.value.response["Error"]
            assert refused_change.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert error["Code"] == "ServiceUnavailable", change
            assert "map store is unreachable" in error["Message"], change
    finally:
        for member in etcd_trio.names:
            etcd_trio.start_member(member)
        etcd_trio.wait_healthy()
    spec = etcd_cluster.config.map
    wait_for(lambda: sum("/gateway/" in k for k in read_prefix(
        etcd_trio.endpoints, spec.prefix + "members/")) >= 2, timeout=30,
        what="both gateways' member records back after the outage")
    # etcd is back: bucket changes work again, and nothing refused happened
    wait_for(lambda: status_of(lambda: s3.delete_bucket(Bucket=empty)) != 503, timeout=15,
             what="a bucket change accepted after the outage")
    assert status_of(lambda: s3.head_bucket(Bucket=empty)) == 404
    assert status_of(lambda: s3.get_bucket_tagging(Bucket=name)) == 404  # none was set


def test_the_rebalancer_pauses_while_etcd_is_down(tmp_path_factory, etcd_trio):
    root = tmp_path_factory.mktemp("pause")
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=["--etcd", ",".join(etcd_trio.endpoints),
                                 "--rebalance-setting", "versions_per_second=10"]).start()
    try:
        s3 = dev.client(*USERS["alice"])
        name = f"p-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=name)
        bodies = {f"k{i:03d}": os.urandom(2_000 + i) for i in range(150)}
        for key, body in bodies.items():
            s3.put_object(Bucket=name, Key=key, Body=body)
        url = start_volume(dev, "v7")
        assert admin(dev, "volume", "add", "v7", "--url", url).returncode == 0
        time.sleep(2)  # the move is under way (150 versions at 10 a second)
        for member in list(etcd_trio.procs):
            etcd_trio.kill_member(member)
        try:
            time.sleep(3)
            assert all(s3.get_object(Bucket=name, Key=k)["Body"].read() == b
                       for k, b in list(bodies.items())[:40])
            copy = jsonio.loads((dev.data / "map-gateway.json").read_bytes())
            assert copy["map"]["previous"] is not None  # not finished: paused
            status = admin(dev, "rebalance", "status")
            assert status.returncode == 1 and "unreachable" in status.stderr
        finally:
            for member in etcd_trio.names:
                etcd_trio.start_member(member)
            etcd_trio.wait_healthy()
        wait_moved(dev)
        assert all(s3.get_object(Bucket=name, Key=k)["Body"].read() == b
                   for k, b in bodies.items())
    finally:
        dev.stop()


def test_a_volume_on_a_new_port_reaches_the_gateway_through_the_map(tmp_path_factory):
    with own_cluster(tmp_path_factory, "map-url") as dev:
        s3 = dev.client(*USERS["alice"], retries={"max_attempts": 1})
        name = f"u-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(Bucket=name)
        body = os.urandom(2_500_000)
        s3.put_object(Bucket=name, Key="k", Body=body)
        old = dev.config.volume("v1")
        dev.kill_volume("v1")
        new_url = f"http://127.0.0.1:{free_port()}"
        log = open(dev.data / "logs" / "v1.moved.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "shardgate", "volume", "--config",
                                 str(dev.data / "cluster.toml"), "--id", "v1", "--url",
                                 new_url, "--data-dir", old.data_dir],
                                stdout=log, stderr=subprocess.STDOUT)
        dev.extra.append(proc)
        wait_http(f"{new_url}/health", token=dev.token("v1"))
        time.sleep(2)  # the gateway's watch: well under a second on the embedded store
        # With v2 and v3 down, a read needs v1: only its new address can serve it.
        dev.kill_volume("v2")
        dev.kill_volume("v3")
        assert s3.get_object(Bucket=name, Key="k")["Body"].read() == body


def test_a_volume_not_in_the_map_serves_and_holds_nothing(cluster, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "shardgate", "volume", "--config",
                             str(cluster.data / "cluster.toml"), "--id", "v7", "--url", url,
                             "--data-dir", str(tmp_path / "v7")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{url}/health", token=cluster.token("v7"))
        import urllib.request

        request = urllib.request.Request(f"{url}/status")
        request.add_header("Authorization", f"Bearer {cluster.token('v7')}")
        with urllib.request.urlopen(request, timeout=5) as answer:
            status = jsonio.loads(answer.read())
        assert status["id"] == "v7" and status["objects"] == 0
        copy = jsonio.loads((tmp_path / "v7" / "map-volume.json").read_bytes())
        assert "v7" not in [v["id"] for v in copy["map"]["volumes"]]  # not added by serving
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_bucket_records_held_by_volumes_are_imported_once(tmp_path_factory):
    """A cluster from before the map store kept bucket records on its volumes: the first
    gateway to find no import marker copies them over, objects and settings intact."""
    with own_cluster(tmp_path_factory, "import") as dev:
        s3 = dev.client(*USERS["alice"])
        s3.create_bucket(Bucket="legacy")
        s3.put_bucket_versioning(Bucket="legacy",
                                 VersioningConfiguration={"Status": "Enabled"})
        bodies = {f"k{i}": os.urandom(1000 * i + 1) for i in range(5)}
        for key, body in bodies.items():
            s3.put_object(Bucket="legacy", Key=key, Body=body)
        spec = dev.config.map

        async def back_to_volumes() -> dict:
            """Hand the record back to the volumes, as they held it, and forget it here."""
            store = open_store(spec)
            try:
                record, _ = await read_bucket(store, spec, "legacy")
                await store.delete(bucket_key(spec, "legacy"))
                await store.delete(imported_key(spec))
                return record
            finally:
                await store.close()
        record = asyncio.run(back_to_volumes())
        settings = record.pop("settings")
        for vid in dev.volume_ids:
            volume_put(dev, vid, "/buckets/legacy", record)
            for setting, held in settings.items():
                volume_put(dev, vid, f"/buckets/legacy/settings/{setting}",
                           {"incarnation": record["incarnation"], **held})
        second = dev.client_at(dev.second_gateway(), *USERS["alice"])
        assert second.get_bucket_versioning(Bucket="legacy")["Status"] == "Enabled"
        for key, body in bodies.items():
            assert second.get_object(Bucket="legacy", Key=key)["Body"].read() == body
        assert s3.get_object(Bucket="legacy", Key="k3")["Body"].read() == bodies["k3"]
        assert "legacy" in {b["Name"] for b in s3.list_buckets()["Buckets"]}

        async def marker() -> dict:
            store = open_store(spec)
            try:
                entry = (await store.read(imported_key(spec))).entries[imported_key(spec)]
                return jsonio.loads(entry.value)
            finally:
                await store.close()
        assert asyncio.run(marker())["copied"] == 1
