"""A move of a version written with only k fragments: two of its volumes were down at
the write (their indexes unnamed in its manifest), and the new ring takes a third holder
out of its placement. The fragment on the leaving volume must be copied, not forgotten:
rebuilding from the volumes that stay finds k - 1 fragments, and the move would wait
forever while the version keeps no redundancy at all."""

from __future__ import annotations

import os
import uuid

import pytest

from placement.movement import stable_placement
from placement.ring import Ring, RingNode
from shardgate.manifest import ObjectManifest
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import (
    archive_path,
    current_manifest,
    incarnation,
    latest_rows,
    placement,
)
from tests.e2e.rebalance_helpers import admin, start_volume, wait_moved

pytestmark = pytest.mark.e2e


def _key_that_loses_a_holder(inc: str, volume_ids: list[str]
                             ) -> tuple[str, str, tuple[str, ...]]:
    """A key whose placement on the grown ring drops one of its volumes; (key, that one,
    the placement after the move)."""
    old = Ring([RingNode(v) for v in volume_ids])
    new = Ring([RingNode(v) for v in [*volume_ids, "v7"]])
    for n in range(1000):
        key = f"thin-{n}"
        before = old.placement(f"{inc}/{key}", 6)
        after = stable_placement(before, new, f"{inc}/{key}")
        leaving = [v for v in before if v not in after]
        if len(leaving) == 1:
            return key, leaving[0], after
    raise AssertionError("no key loses a holder")


def test_a_version_on_k_volumes_moves_whole(tmp_path_factory):
    # No healer round may restore the two missing fragments before the move does.
    with own_cluster(tmp_path_factory, "thin", ("heal_interval_seconds=3600",)) as dev:
        s3 = dev.client(*USERS["alice"])
        bucket = f"thin-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        inc = incarnation(dev, bucket)
        key, leaving, after = _key_that_loses_a_holder(inc, dev.volume_ids)
        down = [v for v in placement(dev, bucket, key) if v != leaving][:2]
        for vid in down:
            dev.kill_volume(vid)
        data = os.urandom(150_000)
        s3.put_object(Bucket=bucket, Key=key, Body=data)  # on 4 of 6: the write quorum
        for vid in down:
            dev.restart_volume(vid)
        written = current_manifest(dev, bucket, key)
        version = written.version_id
        assert [v is None for v in written.parts[0].placement] == [
            v in down for v in placement(dev, bucket, key)]

        added = admin(dev, "volume", "add", "v7", "--url", start_volume(dev, "v7"))
        assert added.returncode == 0, added.stderr
        wait_moved(dev, timeout=120)

        for vid in (v for v in after if v != "v7"):  # every staying holder's row agrees
            rows = latest_rows(dev, vid, bucket, key)
            assert [r["version_id"] for r in rows] == [version], (vid, rows)
            part = ObjectManifest.from_dict(rows[0]["manifest"]).parts[0]
            assert part.placement == after, (vid, part.placement)
        for index, vid in enumerate(after):  # and every fragment is where it names it
            archive = part.archive_id(inc, key, index)
            path = (dev.data / "v7" / "fragments" / archive[:2] / archive[2:4] / archive
                    if vid == "v7" else archive_path(dev, vid, archive))
            assert path.exists(), (index, vid)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
