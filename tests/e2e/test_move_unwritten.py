"""A move of a version, or of an open upload's part, written with only k fragments: two
of its volumes were down at the write (their indexes unnamed), and the new ring takes a
third holder out of its placement. The fragment on the leaving volume must be copied,
not forgotten: rebuilding from the volumes that stay finds k - 1 fragments, and the move
would wait forever while the data keeps no redundancy at all. The two unwritten indexes
are then rebuilt from the copies too, so the data ends on all six volumes."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from placement.movement import stable_placement
from placement.ring import Ring, RingNode
from shardgate.manifest import ObjectManifest
from tests.e2e.cluster import DevCluster
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


def _thin_key(inc: str, volume_ids: list[str]
              ) -> tuple[str, list[str], tuple[str, ...]]:
    """A key whose placement on the grown ring drops one of its volumes: (the key, two
    other volumes of its placement to be down at the write, the placement after the move
    of what the four others hold). The unwritten indexes take the volumes the new ring
    places in ring order, so they may change places."""
    old = Ring([RingNode(v) for v in volume_ids])
    new = Ring([RingNode(v) for v in [*volume_ids, "v7"]])
    for n in range(1000):
        key = f"thin-{n}"
        before = old.placement(f"{inc}/{key}", 6)
        leaving = [v for v in before if v not in new.placement(f"{inc}/{key}", 6)]
        if len(leaving) == 1:
            down = [v for v in before if v not in leaving][:2]
            written = tuple(None if v in down else v for v in before)
            return key, down, stable_placement(written, new, f"{inc}/{key}")
    raise AssertionError("no key loses a holder")


@dataclass
class Thin:
    """A cluster with healing held off (no healer round may restore the missing
    fragments before the move does), its bucket, and a key `_thin_key` chose."""

    dev: DevCluster
    s3: object
    bucket: str
    inc: str
    key: str
    down: list[str]
    after: tuple[str, ...]

    @contextlib.contextmanager
    def two_down(self) -> Iterator[None]:
        """The two volumes down while the body runs (a write lands on the other four)."""
        for vid in self.down:
            self.dev.kill_volume(vid)
        try:
            yield
        finally:
            for vid in self.down:
                self.dev.restart_volume(vid)

    def add_v7(self) -> None:
        added = admin(self.dev, "volume", "add", "v7", "--url", start_volume(self.dev, "v7"))
        assert added.returncode == 0, added.stderr
        wait_moved(self.dev, timeout=120)


@contextlib.contextmanager
def thin_cluster(tmp_path_factory, name: str) -> Iterator[Thin]:  # noqa: ANN001
    with own_cluster(tmp_path_factory, name, ("heal_interval_seconds=3600",)) as dev:
        s3 = dev.client(*USERS["alice"])
        bucket = f"{name}-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        inc = incarnation(dev, bucket)
        yield Thin(dev, s3, bucket, inc, *_thin_key(inc, dev.volume_ids))


def test_a_version_on_k_volumes_moves_whole(tmp_path_factory):
    with thin_cluster(tmp_path_factory, "thin") as thin:
        dev, s3, bucket, inc, key, after = (thin.dev, thin.s3, thin.bucket, thin.inc,
                                            thin.key, thin.after)
        data = os.urandom(150_000)
        with thin.two_down():
            s3.put_object(Bucket=bucket, Key=key, Body=data)  # on 4 of 6: the write quorum
        written = current_manifest(dev, bucket, key)
        version = written.version_id
        assert [v is None for v in written.parts[0].placement] == [
            v in thin.down for v in placement(dev, bucket, key)]

        thin.add_v7()

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


def test_an_upload_part_on_k_volumes_moves_whole(tmp_path_factory):
    with thin_cluster(tmp_path_factory, "thinpart") as thin:
        s3, bucket, key = thin.s3, thin.bucket, thin.key
        data = os.urandom(1_500_000)  # two segments
        with thin.two_down():
            upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1,
                                  Body=data)["ETag"]  # on 4 of 6

        thin.add_v7()

        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                 "ETag": etag}]})
        part = current_manifest(thin.dev, bucket, key).parts[0]
        assert part.placement == thin.after  # every index has a holder on the new placement
        # No heal runs: two volumes that held the part from the start may fail, and the
        # four left (the copy on v7, the rebuilt ones on the volumes once down) suffice.
        for vid in [v for v in thin.after if v not in thin.down and v != "v7"][:2]:
            thin.dev.kill_volume(vid)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
