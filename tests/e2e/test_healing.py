"""Healing: writes made while volumes were down are rebuilt with no command, every
fragment verifies where the placement says it lives, and corrupt fragments are rebuilt.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from erasure import Codec, FragmentCorrupt
from shardgate.manifest import ObjectManifest
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import incarnation, placement, volume_json
from tests.e2e.test_degraded_subsets import partitioned_gateway

pytestmark = pytest.mark.e2e
HEAL_DEADLINE = 120.0


def heal_depth(cluster, prefix: str) -> int:
    """Heal entries for keys under `prefix` (other tests leave objects they made
    unrecoverable on purpose; their entries stay)."""
    return sum(e["key"].startswith(prefix)
               for vid in cluster.volume_ids
               for e in volume_json(cluster, vid, "/heal?limit=100000")["entries"])


def wait_healed(cluster, prefix: str, deadline: float = HEAL_DEADLINE) -> float:
    start = time.monotonic()
    while heal_depth(cluster, prefix):
        assert time.monotonic() - start < deadline, "heal backlog not drained in time"
        time.sleep(1.0)
    return time.monotonic() - start


def archive_bytes(cluster, volume_id: str, archive: str) -> bytes:
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}"
                                     f"/archives/{archive}")
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id)}")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.read()


def assert_fully_redundant(cluster, bucket: str, key: str) -> None:
    """Every volume of the placement holds the current version's row naming all six
    holders, durable, and its fragment archive verifies frame by frame."""
    inc = incarnation(cluster, bucket)
    volumes = placement(cluster, bucket, key)
    rows = [volume_json(cluster, vid, f"/objects/latest?incarnation={inc}&key={key}")
            ["versions"] for vid in volumes]
    newest = max(r[0]["version_id"] for r in rows if r)
    for vid, versions in zip(volumes, rows, strict=True):
        assert versions and versions[0]["version_id"] == newest, f"{key}: {vid} lacks it"
        assert versions[0]["durable"], f"{key}: not durable on {vid}"
        manifest = ObjectManifest.from_dict(versions[0]["manifest"])
        for part in manifest.parts:
            assert part.placement == volumes, f"{key}: manifest on {vid} misses holders"
    ec = manifest.erasure
    codec = Codec(ec.k, ec.m, ec.ec_type, ec.segment_size)
    for part in manifest.parts:
        layout = codec.layout(part.size)
        seeds = part.seeds(inc, key) or {}
        for index, vid in enumerate(volumes):
            data = archive_bytes(cluster, vid, part.archive_id(inc, key, index))
            assert len(data) == layout.archive_size
            for segment in range(layout.num_segments):
                start = layout.archive_offset(segment)
                codec.unframe(data[start:start + layout.framed_length(segment)], index,
                              seeds.get(index, 0))


@pytest.fixture(scope="module")
def hcluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster of its own: its heal backlog is this test's alone."""
    with own_cluster(tmp_path_factory, "heal") as cluster:
        yield cluster


def admin_status(cluster) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "shardgate", "admin", "--config",
                           str(cluster.data / "cluster.toml"), "status", "--json"],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, json.loads(done.stdout)


def test_writes_while_two_volumes_are_down_are_healed(hcluster):
    cluster = hcluster
    s3 = cluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    bucket = "healing"
    s3.create_bucket(Bucket=bucket)
    down = cluster.volume_ids[:2]
    bodies = {}
    for vid in down:
        cluster.kill_volume(vid)
    try:
        time.sleep(1.2)
        for n in range(200):
            size = 3 * (1 << 20) + n if n % 50 == 0 else 4096 + 97 * n
            bodies[f"heal/{n:03d}"] = os.urandom(size)
            s3.put_object(Bucket=bucket, Key=f"heal/{n:03d}", Body=bodies[f"heal/{n:03d}"])
        s3.delete_object(Bucket=bucket, Key="heal/000")
        del bodies["heal/000"]
        code, status = admin_status(cluster)
        assert code == 1 and sorted(status["cluster"]["volumes_down"]) == sorted(down)
    finally:
        for vid in down:
            cluster.restart_volume(vid)
    took = wait_healed(cluster, "heal/")
    print(f"healed 200 objects in {took:.1f} s after the volumes' return")
    code, status = admin_status(cluster)
    assert code == 0, status
    assert all(v["heal_backlog"] == 0 for v in status["volumes"])
    for key in list(bodies)[::7]:
        assert_fully_redundant(cluster, bucket, key)
    # With everything healed, any two volumes may go: every pair in turn, through a
    # gateway whose volume client refuses them.
    with partitioned_gateway(cluster) as (volumes, s3p):
        for pair in itertools.combinations(cluster.volume_ids, 2):
            volumes.down = frozenset(pair)
            for key, body in bodies.items():
                assert s3p.get_object(Bucket=bucket, Key=key)["Body"].read() == body, (
                    pair, key)
            assert [o["Key"] for o in s3p.list_objects_v2(Bucket=bucket, Prefix="heal/000")
                    .get("Contents", [])] == []


def test_a_heal_met_with_too_few_volumes_up_is_retried_when_they_return(hcluster):
    """Written on four volumes, then a third holder dies: the healer finds fewer than k
    fragments it can reach. That is a deferral (the rest are on volumes that did not
    answer), not a loss: back up, the object heals within seconds, not after the long
    back-off kept for versions truly lost."""
    cluster = hcluster
    s3 = cluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    bucket = "healing-late"
    s3.create_bucket(Bucket=bucket)
    holders = placement(cluster, bucket, "late/x")
    inc = incarnation(cluster, bucket)  # asked now: v1 may be one of the holders killed
    down = list(holders[:2])
    for vid in down:
        cluster.kill_volume(vid)
    try:
        time.sleep(1.2)
        body = os.urandom(2 * (1 << 20) + 3)
        s3.put_object(Bucket=bucket, Key="late/x", Body=body)
        down.append(holders[2])
        cluster.kill_volume(holders[2])
        time.sleep(6)  # a few heal rounds (every 2 s) meet the version with 3 down
        # Those rounds must not erase holders that were merely down: the third holder's
        # fragment is good, and once it is back a reader needs the manifest to name it.
        for vid in holders[3:]:
            row = volume_json(cluster, vid, f"/objects/latest?incarnation={inc}&key=late/x"
                              )["versions"][0]
            assert row["manifest"]["parts"][0]["placement"][2] == holders[2], vid
    finally:
        for vid in down:
            cluster.restart_volume(vid)
    wait_healed(cluster, "late/", deadline=60)
    assert_fully_redundant(cluster, bucket, "late/x")
    assert s3.get_object(Bucket=bucket, Key="late/x")["Body"].read() == body


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_corrupt_fragments_are_read_around_and_rebuilt(cluster, s3, bucket):
    data = os.urandom(5 * (1 << 20) + 123)
    s3.put_object(Bucket=bucket, Key="rot", Body=data)
    wait_healed(cluster, "rot")
    inc = incarnation(cluster, bucket)
    volumes = placement(cluster, bucket, "rot")
    latest = volume_json(cluster, volumes[0], f"/objects/latest?incarnation={inc}&key=rot")
    manifest = ObjectManifest.from_dict(latest["versions"][0]["manifest"])
    ec = manifest.erasure
    codec = Codec(ec.k, ec.m, ec.ec_type, ec.segment_size)
    part = manifest.parts[0]
    layout = codec.layout(part.size)
    # Three archives, three different segments: every segment keeps 5 good fragments.
    for index, segment in ((0, 1), (2, 3), (3, 5)):
        spec = cluster.config.volume(volumes[index])
        archive = part.archive_id(inc, "rot", index)
        path = Path(spec.data_dir) / "fragments" / archive[:2] / archive[2:4] / archive
        _flip(path, layout.archive_offset(segment) + 100)
    assert s3.get_object(Bucket=bucket, Key="rot")["Body"].read() == data
    # Queued in the background as the GET finds them (and dropped once healed): every
    # one must be seen queued at some point.
    seen: set[str] = set()
    deadline = time.monotonic() + 15
    while len(seen) < 3 and time.monotonic() < deadline:
        seen |= {e["archive_id"] for vid in volumes
                 for e in volume_json(cluster, vid, "/heal")["entries"] if e["key"] == "rot"}
        time.sleep(0.05)
    assert len(seen) == 3, seen
    wait_healed(cluster, "rot")
    assert_fully_redundant(cluster, bucket, "rot")
    assert s3.get_object(Bucket=bucket, Key="rot")["Body"].read() == data


def scrub(cluster, volume_id: str) -> dict:
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}/scrub",
                                     method="POST")
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id, 'write')}")
    with urllib.request.urlopen(request, timeout=120) as resp:
        return json.loads(resp.read())


def test_scrub_finds_rot_and_loss_nobody_read(cluster, s3, bucket):
    """Data at rest that no client reads: the scrubber finds a flipped byte and a lost
    archive, queues them, and the healer rebuilds both."""
    data = os.urandom(3 * (1 << 20) + 5)
    s3.put_object(Bucket=bucket, Key="cold", Body=data)
    wait_healed(cluster, "cold")
    inc = incarnation(cluster, bucket)
    volumes = placement(cluster, bucket, "cold")
    latest = volume_json(cluster, volumes[0], f"/objects/latest?incarnation={inc}&key=cold")
    part = ObjectManifest.from_dict(latest["versions"][0]["manifest"]).parts[0]

    def path(index: int) -> Path:
        archive = part.archive_id(inc, "cold", index)
        return (Path(cluster.config.volume(volumes[index]).data_dir) / "fragments"
                / archive[:2] / archive[2:4] / archive)

    def found(report: dict, index: int) -> list[str]:
        """What the scrub said of this object's archive (the healer may already be at
        work on it by the time its heal entry could be looked at)."""
        archive = part.archive_id(inc, "cold", index)
        return [p for p in report["problems"] if p.startswith(archive)]

    # One at a time: a heal of the object verifies every fragment, so it would mend the
    # other damage too before its own scrub could see it.
    path(4).unlink()
    assert found(scrub(cluster, volumes[4]), 4) == [
        f"{part.archive_id(inc, 'cold', 4)}: archive missing"]
    wait_healed(cluster, "cold")
    _flip(path(1), 5000)
    assert found(scrub(cluster, volumes[1]), 1)[0].endswith(
        "checksum failure in segment 0: checksum mismatch")
    wait_healed(cluster, "cold")
    assert_fully_redundant(cluster, bucket, "cold")
    assert found(scrub(cluster, volumes[1]), 1) == []
    assert found(scrub(cluster, volumes[4]), 4) == []


def test_a_fragment_in_another_archive_s_place_is_caught(cluster, s3, bucket):
    """Fragment CRCs are seeded with their archive's name: object B's fragment 0 copied
    over object A's (same size, same index, a valid pyeclib fragment) fails on read, is
    read around, and is rebuilt."""
    a, b = os.urandom(2 * (1 << 20) + 9), os.urandom(2 * (1 << 20) + 9)
    s3.put_object(Bucket=bucket, Key="place/a", Body=a)
    s3.put_object(Bucket=bucket, Key="place/b", Body=b)
    wait_healed(cluster, "place/")
    inc = incarnation(cluster, bucket)

    def archive_path(key: str, index: int) -> Path:
        volumes = placement(cluster, bucket, key)
        latest = volume_json(cluster, volumes[0],
                             f"/objects/latest?incarnation={inc}&key={key}")
        part = ObjectManifest.from_dict(latest["versions"][0]["manifest"]).parts[0]
        assert part.seeded
        archive = part.archive_id(inc, key, index)
        return (Path(cluster.config.volume(volumes[index]).data_dir) / "fragments"
                / archive[:2] / archive[2:4] / archive)

    archive_path("place/a", 0).write_bytes(archive_path("place/b", 0).read_bytes())
    assert s3.get_object(Bucket=bucket, Key="place/a")["Body"].read() == a
    # the read queues the heal in the background: wait for the rebuilt fragment
    deadline = time.monotonic() + HEAL_DEADLINE
    while True:
        try:
            assert_fully_redundant(cluster, bucket, "place/a")
            break
        except FragmentCorrupt:
            assert time.monotonic() < deadline, "the misplaced fragment was not rebuilt"
            time.sleep(0.5)
    assert s3.get_object(Bucket=bucket, Key="place/b")["Body"].read() == b
