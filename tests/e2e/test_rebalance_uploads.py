"""Open multipart uploads across a rebalance, against real processes: uploads started
before a 7th volume is added, and before it is drained and removed, move with their keys
(record and part fragments on exactly the new placement, the leaving volume's copy
gone), are refused to a gateway whose ring lags (create, claim, Complete: StaleEpoch),
complete afterwards byte-exact, and read with two volumes down. Part fragments
corrupted on the draining volume are rebuilt from the others, never copied; a rebalancer
SIGKILLed between a part's move and the leaving volume's drop resumes, and nothing of
the uploads is lost; uploads completed or aborted before the rebalancer reaches them
leave no copy behind on the volumes that left their placement; an upload whose create
and parts missed a volume (down then) moves whole too, and what a volume down through
its whole drain kept is never listed once it is back."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shardgate.clustermap import ClusterMap
from tests.e2e.cluster import DevCluster, free_port
from tests.e2e.conftest import USERS, write_users
from tests.e2e.helpers import incarnation
from tests.e2e.rebalance_helpers import (
    admin,
    logs_of,
    map_urls,
    process_of,
    start_volume,
    wait_moved,
)

pytestmark = pytest.mark.e2e

PART_SIZES = (5 * 1024**2 + 1000, 300_000)  # six 1 MiB segments, then one


def volume_answer(dev: DevCluster, vid: str, path: str) -> dict | None:
    """A volume's JSON answer, or None on a 404."""
    request = urllib.request.Request(f"{map_urls(dev)[vid]}{path}")
    request.add_header("Authorization", f"Bearer {dev.token(vid)}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def key_placement(dev: DevCluster, inc: str, key: str) -> set[str]:
    raw = json.loads((dev.data / "map-gateway.json").read_text())["map"]
    return set(ClusterMap.from_dict(raw).ring().placement(f"{inc}/{key}", 6))


def archive_file(dev: DevCluster, vid: str, archive: str) -> Path:
    return dev.data / vid / "fragments" / archive[:2] / archive[2:4] / archive


def open_uploads(s3, bucket: str, count: int,
                 keep: Callable[[str], bool] = lambda key: True) -> dict[str, dict]:
    """`count` uploads with two parts each, left open, on keys `keep` accepts: key ->
    upload id, parts, MD5."""
    opened = {}
    keys = (f"open/{uuid.uuid4().hex[:6]}-{i}" for i in itertools.count())
    for key in itertools.islice(filter(keep, keys), count):
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts, whole = [], hashlib.md5()
        for number, size in enumerate(PART_SIZES, start=1):
            body = os.urandom(size)
            whole.update(body)
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload,
                                  PartNumber=number, Body=body)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        opened[key] = {"id": upload, "parts": parts, "md5": whole.hexdigest()}
    return opened


def test_a_volume_down_through_its_whole_drain_shows_nothing_it_kept(tmp_path):
    """v7 is SIGKILLed, then drained: its uploads move whole from the others and are
    completed, but v7 still holds its copies when it comes back (draining, not yet
    removed). Listings no longer ask it once the move has finished: no ended upload
    shows, the objects list once, and removing it changes nothing."""
    with six_volumes(tmp_path) as (dev, s3, bucket, inc):
        add_v7(dev)
        wait_moved(dev)
        opened = open_uploads(s3, bucket, 6)
        on_v7 = {k for k in opened if "v7" in key_placement(dev, inc, k)}
        assert on_v7
        dev.kill_volume("v7")
        drained = admin(dev, "volume", "drain", "v7")
        assert drained.returncode == 0, drained.stderr
        wait_moved(dev)
        complete_all(s3, bucket, opened)
        url = start_volume(dev, "v7")  # back on its data, on a new port, still draining
        deadline = time.monotonic() + 30
        while map_urls(dev)["v7"] != url:  # the gateway knows where it is again
            assert time.monotonic() < deadline, map_urls(dev)
            time.sleep(0.2)
        kept = volume_answer(dev, "v7", "/uploads?incarnation=&prefix=")["uploads"]
        assert {row["key"] for row in kept} == on_v7
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert listed == sorted(opened)
        versions = s3.list_object_versions(Bucket=bucket)["Versions"]
        assert sorted(v["Key"] for v in versions) == sorted(opened)
        assert admin(dev, "volume", "remove", "v7").returncode == 0
        assert unreadable(s3, bucket, opened) == []


def assert_on_placement(dev: DevCluster, inc: str, opened: dict[str, dict],
                        without: frozenset[str] = frozenset()) -> None:
    """Each upload's record, and each part's fragment archive, on exactly the key's
    placement: every volume of it lists the part (its archive file there), no other
    (`without`: volumes stopped, which the map copy may not have dropped yet)."""
    volumes = sorted(set(map_urls(dev)) - without)
    for key, upload in opened.items():
        where = key_placement(dev, inc, key)
        records = {v for v in volumes if volume_answer(dev, v, f"/uploads/{upload['id']}")}
        assert records == where, (key, records, where)
        for number in (1, 2):
            holders = set()
            for vid in volumes:
                rows = volume_answer(dev, vid, f"/uploads/{upload['id']}/parts") or {}
                for row in rows.get("parts", []):
                    if row["part_number"] == number:
                        assert archive_file(dev, vid, row["archive_id"]).exists(), (vid, row)
                        holders.add(vid)
            assert holders == where, (key, number, holders, where)


def complete_all(s3, bucket: str, opened: dict[str, dict]) -> None:
    for key, upload in opened.items():
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["id"],
                                     MultipartUpload={"Parts": upload["parts"]})


def unreadable(s3, bucket: str, opened: dict[str, dict]) -> list[str]:
    return [key for key, upload in opened.items()
            if hashlib.md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
            != upload["md5"]]


def corrupt_parts(dev: DevCluster, vid: str, opened: dict[str, dict]) -> int:
    """Flip bytes in the middle of every part fragment archive `vid` holds for these
    uploads; how many."""
    count = 0
    for upload in opened.values():
        rows = volume_answer(dev, vid, f"/uploads/{upload['id']}/parts") or {"parts": []}
        for row in rows["parts"]:
            path = archive_file(dev, vid, row["archive_id"])
            with open(path, "r+b") as fh:
                fh.seek(path.stat().st_size // 2)
                original = fh.read(16)
                fh.seek(path.stat().st_size // 2)
                fh.write(bytes(b ^ 0xFF for b in original))
                os.fsync(fh.fileno())
            count += 1
    return count


@contextlib.contextmanager
def six_volumes(tmp_path: Path, env: dict[str, str] | None = None
                ) -> Iterator[tuple[DevCluster, object, str, str]]:
    """A fresh 6-volume dev cluster with one bucket: (cluster, client, bucket, its
    incarnation); stopped afterwards."""
    dev = DevCluster(tmp_path / "data", free_port(), write_users(tmp_path / "users.toml"),
                     env=env or {})
    dev.start()
    try:
        s3 = dev.client(*USERS["alice"])
        bucket = f"up-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        yield dev, s3, bucket, incarnation(dev, bucket)
    finally:
        dev.stop()


def add_v7(dev: DevCluster) -> None:
    added = admin(dev, "volume", "add", "v7", "--url", start_volume(dev, "v7"))
    assert added.returncode == 0, added.stderr


def stale_write(dev: DevCluster, vid: str, method: str, path: str, body: dict) -> dict:
    """A write as a gateway still on ring epoch 1 sends it: the volume's JSON answer."""
    request = urllib.request.Request(f"{map_urls(dev)[vid]}{path}", method=method,
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "x-shardgate-epoch": "1"})
    request.add_header("Authorization", f"Bearer {dev.token(vid, 'write')}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return {"status": resp.status, **json.loads(resp.read())}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, **json.loads(exc.read())}


def assert_lagging_ring_refused(dev: DevCluster, inc: str, bucket: str,
                                opened: dict[str, dict]) -> None:
    """Once the volumes know epoch 2, a gateway whose map lags can neither create an
    upload record, nor claim or complete an open upload, where ring 1 placed it."""
    key, upload = next(iter(opened.items()))
    ghost = uuid.uuid4().hex
    record = {"incarnation": inc, "bucket": bucket, "key": "ghost", "upload_id": ghost,
              "initiated": time.time(), "owner": "alice", "manifest": {}}
    for vid in sorted(map_urls(dev)):
        for method, path, body in (
                ("PUT", f"/uploads/{ghost}", record),
                ("POST", f"/uploads/{upload['id']}/claim", {"token": "lag", "op": "complete"}),
                ("POST", f"/uploads/{upload['id']}/complete", {"token": "lag"})):
            answer = stale_write(dev, vid, method, path, body)
            assert (answer["status"], answer.get("code")) == (409, "StaleEpoch"), \
                (vid, path, answer)
        assert volume_answer(dev, vid, f"/uploads/{ghost}") is None, vid


def test_open_uploads_move_with_their_keys_and_complete_after(tmp_path):
    with six_volumes(tmp_path) as (dev, s3, bucket, inc):
        # 1. A volume added: uploads opened before it move to the keys' new placement.
        before_add = open_uploads(s3, bucket, 6)
        add_v7(dev)
        wait_moved(dev)
        assert_on_placement(dev, inc, before_add)
        assert "fragments [" in logs_of(dev, "rebalancer"), logs_of(dev, "rebalancer")[-3000:]
        assert_lagging_ring_refused(dev, inc, bucket, before_add)

        # 2. v7 drained, its part fragments corrupted first: those are rebuilt, not copied.
        before_drain = open_uploads(s3, bucket, 6,
                                    keep=lambda key: "v7" in key_placement(dev, inc, key))
        assert corrupt_parts(dev, "v7", before_drain) == 12
        drained = admin(dev, "volume", "drain", "v7")
        assert drained.returncode == 0, drained.stderr
        wait_moved(dev)
        assert volume_answer(dev, "v7", "/uploads?incarnation=&prefix=")["uploads"] == []
        moves = logs_of(dev, "rebalancer")
        assert "rebuilding instead" in moves and "is corrupt" in moves, moves[-3000:]
        assert admin(dev, "volume", "remove", "v7").returncode == 0
        dev.kill_volume("v7")
        assert_on_placement(dev, inc, {**before_add, **before_drain}, frozenset({"v7"}))

        # 3. Every upload completes after the moves; with two volumes down, each reads
        # byte-exact only if all six of its fragments are where its manifest says.
        opened = {**before_add, **before_drain}
        complete_all(s3, bucket, opened)
        assert unreadable(s3, bucket, opened) == []
        for down in (("v1", "v2"), ("v4", "v6")):
            for vid in down:
                dev.kill_volume(vid)
            try:
                assert unreadable(s3, bucket, opened) == [], down
            finally:
                for vid in down:
                    dev.restart_volume(vid)


def dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_a_rebalancer_killed_in_the_middle_of_an_upload_move_resumes(tmp_path):
    """The rebalancer SIGKILLs itself once the 3rd part fragment is committed on its new
    volume (before the leaving volume drops its copy); a new one takes over the move
    once the dead one's claims expire, and every upload completes whole."""
    armed = {"SHARDGATE_FAULT_POINTS": "1",
             "SHARDGATE_FAULT_ARM": "rebalance.after_part_moved@3"}
    with six_volumes(tmp_path, env=armed) as (dev, s3, bucket, inc):
        opened = open_uploads(s3, bucket, 5)
        pid = process_of(dev, "rebalancer")
        add_v7(dev)
        deadline = time.monotonic() + 120
        while not dead(pid):
            assert time.monotonic() < deadline, logs_of(dev, "rebalancer")[-3000:]
            time.sleep(0.2)
        # Half-moved: the client sees every upload and part as before.
        for key, upload in opened.items():
            parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload["id"])["Parts"]
            assert [p["ETag"] for p in parts] == [p["ETag"] for p in upload["parts"]], key
        log = open(dev.data / "logs" / "rebalancer.restart.log", "ab")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k != "SHARDGATE_FAULT_ARM"}
        dev.extra.append(subprocess.Popen([sys.executable, "-m", "shardgate", "rebalancer",
                                           "--config", str(dev.data / "cluster.toml")],
                                          stdout=log, stderr=subprocess.STDOUT, env=env))
        wait_moved(dev)
        assert_on_placement(dev, inc, opened)
        complete_all(s3, bucket, opened)
        assert unreadable(s3, bucket, opened) == []
        for vid in ("v2", "v5"):
            dev.kill_volume(vid)
        assert unreadable(s3, bucket, opened) == []


def test_uploads_ended_before_the_move_reaches_them_leave_nothing_behind(tmp_path):
    """With the rebalancer paused (SIGSTOP) after a 7th volume is added, uploads opened
    before are completed or aborted through the gateway (on the new epoch): the volumes
    leaving their placement still hold them open. Once it runs, none is listed any more,
    and the completed objects read with two volumes down."""
    with six_volumes(tmp_path) as (dev, s3, bucket, inc):
        opened = open_uploads(s3, bucket, 6)
        pid = process_of(dev, "rebalancer")
        os.kill(pid, signal.SIGSTOP)
        try:
            add_v7(dev)
            time.sleep(3)  # every gateway follows the new epoch (the watch, or fencing)
            completed = dict(list(opened.items())[:4])
            complete_all(s3, bucket, completed)
            for key, upload in list(opened.items())[4:]:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["id"])
            # what the leaving volumes still hold shows in the listing until the move
            assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_moved(dev)
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        for vid in sorted(map_urls(dev)):
            held = volume_answer(dev, vid, "/uploads?incarnation=&prefix=")["uploads"]
            assert held == [], (vid, held)
        assert "had ended on its placement" in logs_of(dev, "rebalancer")
        assert unreadable(s3, bucket, completed) == []
        for vid in ("v1", "v6"):
            dev.kill_volume(vid)
        assert unreadable(s3, bucket, completed) == []


def test_an_upload_a_volume_missed_moves_whole(tmp_path):
    """Uploads created and filled while v2 was down (on five volumes of six) move with
    their keys when a 7th volume is added: the record and every part fragment end up on
    all six volumes of the new placement, v2's missing ones rebuilt there."""
    with six_volumes(tmp_path) as (dev, s3, bucket, inc):
        dev.kill_volume("v2")
        try:
            opened = open_uploads(s3, bucket, 6)
        finally:
            dev.restart_volume("v2")
        add_v7(dev)
        wait_moved(dev)
        # a key whose placement did not change is not moved (Complete heals what v2 missed)
        moved = {k: u for k, u in opened.items() if "v7" in key_placement(dev, inc, k)}
        assert moved
        assert_on_placement(dev, inc, moved)
        complete_all(s3, bucket, opened)
        assert unreadable(s3, bucket, opened) == []
        for vid in ("v3", "v4"):
            dev.kill_volume(vid)
        assert unreadable(s3, bucket, moved) == []
