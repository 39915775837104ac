"""Heal leases: with several gateways, each queued version is healed by one of them.

Every gateway process polls every heal queue; a healer heals a version only under a
lease from a volume of its placement (gateway/objects/heal_leases.py). What must hold:

- rot on many objects, found by two gateways' healers in the same moment, is rebuilt
  once per fragment in all (without leases both rebuild much of it);
- a gateway killed while it holds a version's lease (`gateway.after_heal_lease`) does
  not leave it unhealed: the lease lapses and the other gateway heals it;
- a replaced disk, which every gateway finds and rebuilds, is rebuilt once per lost
  fragment in all, and one gateway killed holding a lease in the middle of it leaves
  the rest, that version included, to the other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.corruption import codec_of, corrupt
from tests.e2e.helpers import current_manifest, placement, volume_json
from tests.e2e.rebalance_helpers import gateway_gauges
from tests.e2e.test_healing import assert_fully_redundant, scrub, wait_healed
from tests.e2e.test_kill_points import db_rows, post

pytestmark = pytest.mark.e2e
MIB = 1 << 20
ROTTEN = 8  # objects with one rotten fragment each
WIPED = "v3"  # the volume whose disk is replaced
LEASE_SECONDS = 3.0


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A cluster of this module's own with kill points enabled, healers polling often,
    short heal leases, and a second gateway."""
    with own_cluster(tmp_path_factory, "heal-leases", env={ENV: "1"},
                     durability=("heal_interval_seconds=0.3",
                                 f"heal_lease_seconds={LEASE_SECONDS}")) as dev:
        second = dev.second_gateway()
        yield dev, second, dev.client(*USERS["alice"])


@pytest.fixture
def other(two):
    """One more gateway for this test alone, stopped after it."""
    dev = two[0]
    endpoint = dev.second_gateway()
    yield endpoint
    dev.stop_gateway(endpoint)


def live_gateways(dev, *endpoints: str) -> list[str]:
    return [e for e in (dev.endpoint, *endpoints) if gateway_alive(e)]


def healed_fragments(dev, endpoint: str) -> float:
    """This gateway process's count of fragments its healer rebuilt and installed."""
    return gateway_gauges(dev, endpoint)["shardgate_healed_fragments_total"]


def rot_and_scrub(dev, s3, bucket: str, keys: list[str]) -> dict[str, bytes]:
    """Write each key, flip bytes in its fragment 1, and have every volume scrub (the
    scrub queues the rot where both healers see it at once)."""
    objects = {key: os.urandom(8 * MIB + n) for n, key in enumerate(keys)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    for key in keys:
        manifest = current_manifest(dev, bucket, key)
        corrupt(dev, manifest, codec_of(manifest), 1, 0)
    for vid in dev.volume_ids:
        scrub(dev, vid)
    return objects


def test_rot_seen_by_two_healers_is_rebuilt_once(two):
    dev, second, s3 = two
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    before = healed_fragments(dev, dev.endpoint) + healed_fragments(dev, second)
    healers = (dev.endpoint, second)
    for endpoint in healers:  # both find the whole backlog at their next round
        post(f"{endpoint}/-/faults", {"hold": "heal.rounds"})
    try:
        objects = rot_and_scrub(dev, s3, bucket, [f"once{n}" for n in range(ROTTEN)])
    finally:
        for endpoint in healers:
            post(f"{endpoint}/-/faults", {"hold": "heal.rounds", "on": False})
    wait_healed(dev, "once")
    rebuilt = healed_fragments(dev, dev.endpoint) + healed_fragments(dev, second) - before
    assert rebuilt == ROTTEN, rebuilt
    for key, data in objects.items():
        assert_fully_redundant(dev, bucket, key)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_a_gateway_killed_holding_a_heal_lease_leaves_the_heal_to_another(two):
    """The first gateway's healer is held back, the second is armed to die as soon as it
    holds a lease: it dies holding it, and once the lease lapses the first heals."""
    dev, second, s3 = two
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    wait_healed(dev, "")
    with dying_with_a_lease(dev, second):
        objects = rot_and_scrub(dev, s3, bucket, ["orphan"])
    wait_healed(dev, "orphan")
    assert_fully_redundant(dev, bucket, "orphan")
    assert s3.get_object(Bucket=bucket, Key="orphan")["Body"].read() == objects["orphan"]


@contextlib.contextmanager
def dying_with_a_lease(dev, doomed: str, held: list[str] | None = None) -> Iterator[None]:
    """The other gateways' healers (`held`, the first one by default) held back and
    `doomed` armed to die as soon as it holds a heal lease, while the body makes work
    for it; returns once it died, with the others let go."""
    held = held or [dev.endpoint]
    for endpoint in held:
        post(f"{endpoint}/-/faults", {"hold": "heal.rounds"})
    try:
        post(f"{doomed}/-/faults", {"point": "gateway.after_heal_lease"})
        yield
        deadline = time.monotonic() + 60
        while gateway_alive(doomed):
            assert time.monotonic() < deadline, "the gateway never took a lease"
            time.sleep(0.1)
    finally:
        for endpoint in held:
            post(f"{endpoint}/-/faults", {"hold": "heal.rounds", "on": False})


def gateway_alive(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/-/ready", timeout=5):
            return True
    except OSError:
        return False


def wipe_and_write(dev, s3, count: int) -> tuple[str, dict[str, bytes], int]:
    """Objects in a new bucket, then volume v3 restarted on an empty data directory:
    (bucket, objects, how many fragment archives it held, of every bucket)."""
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    objects = {f"disk{n}": os.urandom(2 * MIB + n) for n in range(count)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    wait_healed(dev, "")
    lost = db_rows(dev, WIPED, "SELECT COUNT(*) FROM object_archives")[0][0]
    dev.kill_volume(WIPED)
    shutil.rmtree(Path(dev.config.volume(WIPED).data_dir))
    dev.restart_volume(WIPED)
    return bucket, objects, lost


def wait_rebuilt(dev, s3, bucket: str, objects: dict[str, bytes]) -> None:
    deadline = time.monotonic() + 120
    while volume_json(dev, WIPED, "/health")["rebuilding"]:
        assert time.monotonic() < deadline, "rebuild did not finish"
        time.sleep(0.3)
    for key, data in objects.items():
        if WIPED in placement(dev, bucket, key):
            assert_fully_redundant(dev, bucket, key)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_a_replaced_disk_is_rebuilt_once_by_two_gateways(two, other):
    """Every gateway's membership check finds the wiped volume and rebuilds it, each
    version under its lease: each fragment it lost is rebuilt once in all (without
    leases, 31 of 24 here with two gateways), and it holds every version again."""
    dev, second, s3 = two
    gateways = live_gateways(dev, second, other)  # the module's second may be dead
    assert len(gateways) >= 2
    before = sum(healed_fragments(dev, g) for g in gateways)
    bucket, objects, lost = wipe_and_write(dev, s3, 24)
    wait_rebuilt(dev, s3, bucket, objects)
    assert sum(healed_fragments(dev, g) for g in gateways) - before == lost


def test_a_gateway_killed_holding_a_rebuild_lease_leaves_the_rest_to_another(two, other):
    """Only `other` rebuilds the wiped volume at first, armed to die as soon as it holds
    a version's lease; the first gateway, let go then, rebuilds everything, that version
    once its lease lapsed."""
    dev, second, s3 = two
    with dying_with_a_lease(dev, other, held=live_gateways(dev, second)):
        bucket, objects, _ = wipe_and_write(dev, s3, 6)
    wait_rebuilt(dev, s3, bucket, objects)
