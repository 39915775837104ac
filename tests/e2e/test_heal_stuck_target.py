"""A heal whose target volume is stuck (alive, its connection open, taking no bytes) gives
up on the stage clocks instead of holding its healer for ever, and heals the fragment
once the volume moves again.

The volume is held with the fault suite's `stage.body` hold (shardgate/faults.py): its
stages read nothing until released. The healer runs one heal at a time here, so a heal
that never ended would also stop every other heal of this gateway.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.corruption import codec_of, corrupt
from tests.e2e.helpers import current_manifest
from tests.e2e.test_healing import assert_fully_redundant, scrub, wait_healed
from tests.e2e.test_kill_points import post

pytestmark = pytest.mark.e2e
MIB = 1 << 20
CLOCK = 2.0  # stage_stall_seconds and stage_answer_seconds of this cluster
GIVE_UP_MARKERS = ("stage took no bytes", "stage no answer")


@pytest.fixture(scope="module")
def stuck(tmp_path_factory):
    with own_cluster(tmp_path_factory, "stuck-target", env={ENV: "1"},
                     durability=("heal_interval_seconds=0.3", "heal_concurrency=1",
                                 f"stage_stall_seconds={CLOCK}",
                                 f"stage_answer_seconds={CLOCK}")) as dev:
        yield dev, dev.client(*USERS["alice"])


def hold(dev, vid: str, on: bool) -> None:
    post(f"{dev.config.volume(vid).url}/faults", {"hold": "stage.body", "on": on},
         token=dev.token(vid, "write"))


def gave_up(dev) -> int:
    """How many heal stages the gateway's log says it gave up on the clocks."""
    log = (dev.data / "logs" / "gateway.log").read_text(errors="replace")
    return sum(log.count(marker) for marker in GIVE_UP_MARKERS)


def test_a_heal_gives_up_on_a_stuck_target_and_heals_it_once_it_moves(stuck):
    dev, s3 = stuck
    bucket = f"stuck-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(8 * MIB + 5)
    s3.put_object(Bucket=bucket, Key="rot", Body=data)
    manifest = current_manifest(dev, bucket, "rot")
    target = manifest.parts[0].placement[1]
    before = gave_up(dev)
    hold(dev, target, True)
    try:
        corrupt(dev, manifest, codec_of(manifest), 1, 0)  # its fragment 1 is rebuilt there
        scrub(dev, target)
        deadline = time.monotonic() + 20 * CLOCK
        while gave_up(dev) < before + 2:  # given up, retried, given up again
            assert time.monotonic() < deadline, "the heal waited on the stuck volume"
            time.sleep(0.2)
    finally:
        hold(dev, target, False)
    wait_healed(dev, "rot")
    assert_fully_redundant(dev, bucket, "rot")
    assert s3.get_object(Bucket=bucket, Key="rot")["Body"].read() == data
