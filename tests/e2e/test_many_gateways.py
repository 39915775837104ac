"""Several gateways on one cluster: read-after-write across them (1,000 overwrites, the
reader never going back), conditional writes and multipart uploads that cross gateways,
a volume added while one gateway's map watch is held back: its writes are fenced and
retried, never lost, and a multipart upload spanning the change completes byte-exact;
PUTs whose bodies arrive across a whole move, fenced by the epoch of their placement;
tag changes and version deletes from gateways that lag a move, fenced alike; and a
rebalancer that lost its lease leading again."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import sqlite3
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from gateway.objects.rebalancer import LEADER
from shardgate.clustermap import ClusterMap, add_volume
from shardgate.faults import ENV
from shardgate.mapview import MEMBERS, open_store, read_or_seed
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import incarnation, sign
from tests.e2e.rebalance_helpers import (
    admin,
    check_all,
    map_urls,
    process_of,
    start_volume,
    wait_moved,
)

pytestmark = pytest.mark.e2e


def post(url: str, body: dict) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    with own_cluster(tmp_path_factory, "two-gateways", env={ENV: "1"}) as dev:
        second = dev.second_gateway()
        yield dev, dev.client(*USERS["alice"]), dev.client_at(second, *USERS["alice"]), second


def body_of(seq: int) -> bytes:
    """A body that says its own sequence number throughout: a mixed body is seen."""
    stamp = f"{seq:08d}".encode()
    return stamp * (40_000 // len(stamp))


def test_a_reader_on_another_gateway_never_goes_back(two):
    dev, writer, reader, _ = two
    bucket = f"rw-{uuid.uuid4().hex[:8]}"
    writer.create_bucket(Bucket=bucket)
    writer.put_object(Bucket=bucket, Key="k", Body=body_of(0))
    written = [0]
    problems: list[str] = []
    stop = threading.Event()

    def read() -> None:
        last = 0
        while not stop.is_set():
            floor = written[0]  # acknowledged before this read began
            data = reader.get_object(Bucket=bucket, Key="k")["Body"].read()
            seq = int(data[:8])
            if data != body_of(seq):
                problems.append(f"mixed body at {seq}")
            if seq < last or seq < floor:
                problems.append(f"went back: saw {seq} after {last}, {floor} acknowledged")
            last = seq

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    for seq in range(1, 1001):
        writer.put_object(Bucket=bucket, Key="k", Body=body_of(seq))
        written[0] = seq
    stop.set()
    thread.join(30)
    assert problems == []
    assert int(reader.get_object(Bucket=bucket, Key="k")["Body"].read()[:8]) == 1000


def test_conditional_writes_and_multipart_cross_gateways(two):
    _, one, other, _ = two
    bucket = f"cx-{uuid.uuid4().hex[:8]}"
    one.create_bucket(Bucket=bucket)
    assert other.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # the bucket, at once
    one.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        other.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert [o["Key"] for o in other.list_objects_v2(Bucket=bucket)["Contents"]] == ["once"]
    upload = one.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    bodies = [os.urandom(5 << 20), os.urandom(1000)]
    etags = [one.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1,
                             Body=bodies[0])["ETag"],
             other.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2,
                               Body=bodies[1])["ETag"]]
    other.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload,
                                    MultipartUpload={"Parts": [
                                        {"PartNumber": n + 1, "ETag": e}
                                        for n, e in enumerate(etags)]})
    assert one.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(bodies)


def test_a_gateway_with_its_watch_held_back_is_fenced_not_lost(two):
    dev, fresh, held, held_endpoint = two
    bucket = f"held-{uuid.uuid4().hex[:8]}"
    fresh.create_bucket(Bucket=bucket)
    # A multipart upload that spans the change: started and one part before it.
    upload = held.create_multipart_upload(Bucket=bucket, Key="span")["UploadId"]
    first = os.urandom(5 << 20)
    etag1 = held.upload_part(Bucket=bucket, Key="span", UploadId=upload, PartNumber=1,
                             Body=first)["ETag"]
    post(f"{held_endpoint}/-/faults", {"hold": "map.watch"})
    written: dict[str, str] = {}
    failures: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key = f"w/{i:05d}"
            body = os.urandom(100_000 if i % 2 else 2_000)
            try:
                held.put_object(Bucket=bucket, Key=key, Body=body)
                written[key] = hashlib.md5(body).hexdigest()
            except Exception as exc:  # noqa: BLE001 - a failure is a finding
                failures.append(f"{key}: {exc!r}")
            time.sleep(0.01)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        url = start_volume(dev, "v7")
        added = admin(dev, "volume", "add", "v7", "--url", url)
        assert added.returncode == 0, added.stderr
        wait_moved(dev)
        time.sleep(1)
    finally:
        stop.set()
        thread.join(60)
        post(f"{held_endpoint}/-/faults", {"disarm": True})
    assert failures == [], failures[:5]
    assert len(written) > 20
    assert check_all(fresh, bucket, written) == []
    second = os.urandom(300_000)
    etag2 = held.upload_part(Bucket=bucket, Key="span", UploadId=upload, PartNumber=2,
                             Body=second)["ETag"]
    fresh.complete_multipart_upload(Bucket=bucket, Key="span", UploadId=upload,
                                    MultipartUpload={"Parts": [
                                        {"PartNumber": 1, "ETag": etag1},
                                        {"PartNumber": 2, "ETag": etag2}]})
    assert held.get_object(Bucket=bucket, Key="span")["Body"].read() == first + second
    # Its watch held, the gateway learned epoch 2 only from a volume's refusal of its
    # stale epoch (and the rebalancer waited for it to say so before moving anything).
    port = held_endpoint.rsplit(":", 1)[1]
    log = (dev.data / "logs" / f"gateway-{port}.log").read_text(errors="replace")
    assert "cluster map epoch 2" in log


class SlowPut:
    """A PUT (of an object, or with `query` of a part) through the gateway whose body
    comes in two halves, as long apart as a test wants: the first at once, the second
    when `finish` is called."""

    def __init__(self, dev, bucket: str, key: str, body: bytes,  # noqa: ANN001
                 query: str = "") -> None:
        self.body, self.half = body, len(body) // 2
        path = f"/{bucket}/{quote(key)}{query}"
        headers = sign("PUT", f"{dev.endpoint}{path}", *USERS["alice"],
                       {"Content-Length": str(len(body))})
        self.conn = http.client.HTTPConnection("127.0.0.1", dev.port, timeout=120)
        self.conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            self.conn.putheader(name, value)
        self.conn.endheaders()
        self.conn.send(body[:self.half])
        self.sent = self.half

    def trickle(self) -> None:
        """A little more of the body (short of the end), so the gateway does not give
        up waiting for it (its body idle timeout). A failed send is left to `finish`."""
        if self.sent < len(self.body) - 1024:
            try:
                self.conn.send(self.body[self.sent:self.sent + 1024])
            except OSError:
                return
            self.sent += 1024

    def finish(self) -> tuple[int, bytes]:
        self.conn.send(self.body[self.sent:])
        answer = self.conn.getresponse()
        status, text = answer.status, answer.read()
        self.conn.close()
        return status, text


def test_a_put_whose_body_arrives_across_a_whole_move_carries_its_placements_epoch(two):
    """A PUT placed by ring N that commits after the move to N + 1 has finished: where
    its key kept its volumes it lands (stamped N + 1, the same placement); where the key
    moved, every volume refuses the stale placement, so the PUT answers 503 and leaves
    nothing visible, never a version the move never saw on the old placement. A part of
    an upload whose key moved is refused alike, sent again, and the upload completes."""
    dev, fresh, _, _ = two
    bucket = f"late-{uuid.uuid4().hex[:8]}"
    fresh.create_bucket(Bucket=bucket)
    inc = incarnation(dev, bucket)
    before = map_now(dev)
    assert not before.moving
    new_id = next_volume_id(dev)
    url = start_volume(dev, new_id)
    after = add_volume(before, new_id, url)  # the map `volume add` publishes
    width = dev.config.erasure.k + dev.config.erasure.m
    candidates = [f"slow/{i:03d}" for i in range(200)]
    *moved, multipart = [k for k in candidates if moves(dev, before, after, inc, k)][:3]
    stayed = [k for k in candidates if not moves(dev, before, after, inc, k)][:2]
    bodies = {key: os.urandom(3 << 20) for key in moved + stayed}
    puts = {key: SlowPut(dev, bucket, key, body) for key, body in bodies.items()}
    upload = fresh.create_multipart_upload(Bucket=bucket, Key=multipart)["UploadId"]
    part = os.urandom(6 << 20)
    puts[multipart] = SlowPut(dev, bucket, multipart, part,
                              f"?partNumber=1&uploadId={upload}")
    done = threading.Event()

    def keep_alive() -> None:
        while not done.wait(1.0):
            for put in puts.values():
                put.trickle()

    alive = threading.Thread(target=keep_alive, daemon=True)
    alive.start()
    try:
        added = admin(dev, "volume", "add", new_id, "--url", url)
        assert added.returncode == 0, added.stderr
        wait_moved(dev)
    finally:
        done.set()
        alive.join(10)
    with ThreadPoolExecutor(len(puts)) as pool:  # all at once: none waits idle
        answers = dict(zip(puts, pool.map(SlowPut.finish, puts.values()), strict=True))
    for key in stayed:
        assert answers[key][0] == 200, answers[key]
        assert fresh.get_object(Bucket=bucket, Key=key)["Body"].read() == bodies[key]
        # On every volume of the new placement (the same volumes as the old one): the
        # last may commit just after the answer.
        digest = hashlib.md5(bodies[key]).hexdigest()
        for vid in after.ring().placement(f"{inc}/{key}", width):
            deadline = time.monotonic() + 15
            while (row := volume_row(dev, vid, map_urls(dev)[vid], inc, key)) is None \
                    and time.monotonic() < deadline:
                time.sleep(0.2)
            assert row and row["manifest"]["etag"] == digest, (key, vid)
    for key in moved:
        assert answers[key][0] == 503, answers[key]
        assert b"<Code>" in answers[key][1]
        with pytest.raises(ClientError) as missing:
            fresh.head_object(Bucket=bucket, Key=key)
        assert missing.value.response["Error"]["Code"] == "404"
    assert answers[multipart][0] == 503, answers[multipart]
    etag = fresh.upload_part(Bucket=bucket, Key=multipart, UploadId=upload, PartNumber=1,
                             Body=part)["ETag"]
    fresh.complete_multipart_upload(Bucket=bucket, Key=multipart, UploadId=upload,
                                    MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                "ETag": etag}]})
    assert fresh.get_object(Bucket=bucket, Key=multipart)["Body"].read() == part


def test_a_tag_change_or_version_delete_from_a_lagging_gateway_is_fenced(two):
    """Both gateways' map watches held through a `volume add`: a tag change from one and
    a delete by version id from the other, each of a key the move takes to new volumes,
    are refused by the volumes that know the new ring (503, never a change kept where
    the move no longer looks). Each gateway learns the ring from its refusal; sent
    again, both land, and after the move the tags read back and the version is gone."""
    dev, fresh, held, held_endpoint = two
    strict = {"retries": {"total_max_attempts": 1}}
    first = dev.client(*USERS["alice"], **strict)
    second = dev.client_at(held_endpoint, *USERS["alice"], **strict)
    bucket = f"attr-{uuid.uuid4().hex[:8]}"
    fresh.create_bucket(Bucket=bucket)
    fresh.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    inc = incarnation(dev, bucket)
    before = map_now(dev)
    new_id = next_volume_id(dev)
    url = start_volume(dev, new_id)
    after = add_volume(before, new_id, url)
    tagged, pruned = [k for k in (f"a/{i:03d}" for i in range(200))
                      if moves(dev, before, after, inc, k)][:2]
    fresh.put_object(Bucket=bucket, Key=tagged, Body=b"tagged")
    old = fresh.put_object(Bucket=bucket, Key=pruned, Body=b"old")["VersionId"]
    fresh.put_object(Bucket=bucket, Key=pruned, Body=b"new")
    tags = {"TagSet": [{"Key": "moved", "Value": "yes"}]}
    for endpoint in (dev.endpoint, held_endpoint):
        post(f"{endpoint}/-/faults", {"hold": "map.watch"})
    try:
        added = admin(dev, "volume", "add", new_id, "--url", url)
        assert added.returncode == 0, added.stderr
        wait_for_volumes_on(dev, after.epoch)
        with pytest.raises(ClientError) as refused:
            second.put_object_tagging(Bucket=bucket, Key=tagged, Tagging=tags)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with pytest.raises(ClientError) as refused:
            first.delete_object(Bucket=bucket, Key=pruned, VersionId=old)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        second.put_object_tagging(Bucket=bucket, Key=tagged, Tagging=tags)
        first.delete_object(Bucket=bucket, Key=pruned, VersionId=old)
        wait_moved(dev)
    finally:
        for endpoint in (dev.endpoint, held_endpoint):
            post(f"{endpoint}/-/faults", {"disarm": True})
    assert fresh.get_object_tagging(Bucket=bucket, Key=tagged)["TagSet"] == tags["TagSet"]
    listed = fresh.list_object_versions(Bucket=bucket, Prefix=pruned)["Versions"]
    assert [v["VersionId"] for v in listed] != [] and old not in {v["VersionId"]
                                                                  for v in listed}
    with pytest.raises(ClientError) as gone:
        fresh.get_object(Bucket=bucket, Key=pruned, VersionId=old)
    assert gone.value.response["Error"]["Code"] == "NoSuchVersion"


def wait_for_volumes_on(dev, epoch: int, timeout: float = 30) -> None:  # noqa: ANN001
    """Until every volume's member record says it has seen `epoch` (its fence then
    refuses anything older)."""
    async def behind() -> list[str]:
        store = open_store(dev.config.map)
        try:
            prefix = dev.config.map.prefix + MEMBERS + "volume/"
            snapshot = await store.read(prefix)
        finally:
            await store.close()
        return [k for k, entry in snapshot.entries.items()
                if json.loads(entry.value)["epoch"] < epoch]
    deadline = time.monotonic() + timeout
    while (late := asyncio.run(behind())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not late, late


def moves(dev, before: ClusterMap, after: ClusterMap, inc: str,  # noqa: ANN001
          key: str) -> bool:
    """Whether the move from `before` to `after` takes `key` to other volumes."""
    width, ring_key = dev.config.erasure.k + dev.config.erasure.m, f"{inc}/{key}"
    return (set(before.ring().placement(ring_key, width))
            != set(after.ring().placement(ring_key, width)))


def next_volume_id(dev) -> str:  # noqa: ANN001
    """A volume id the map has never had (ids are never reused)."""
    return f"v{max(int(v[1:]) for v in map_urls(dev)) + 1}"


def map_now(dev) -> ClusterMap:  # noqa: ANN001
    """The cluster map as its store holds it now."""
    async def read() -> ClusterMap:
        store = open_store(dev.config.map)
        try:
            return (await read_or_seed(store, dev.config))[0]
        finally:
            await store.close()
    return asyncio.run(read())


def volume_row(dev, vid: str, url: str, inc: str, key: str) -> dict | None:  # noqa: ANN001
    """The newest row of `key` on one volume, by its own `latest` answer."""
    request = urllib.request.Request(
        f"{url}/objects/latest?incarnation={quote(inc)}&key={quote(key)}")
    request.add_header("Authorization", f"Bearer {dev.token(vid)}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        rows = json.loads(answer.read())["versions"]
    return rows[0] if rows else None


def test_a_rebalancer_whose_lease_ran_out_leads_again_and_moves(two):
    """The leader's lease runs out under it (as when its refresh could not reach the
    store in time): it stops, leads again in the same process, and the next move ends."""
    dev, fresh, _, _ = two
    if dev.config.map.store != "embedded":
        pytest.skip("the lease is run out in the embedded store's file")
    log_file = dev.data / "logs" / "rebalancer.log"
    pid = process_of(dev, "rebalancer")
    with sqlite3.connect(dev.config.map.path, timeout=10) as db:
        (lease,) = db.execute("SELECT lease FROM kv WHERE key=?",
                              (dev.config.map.prefix + LEADER,)).fetchone()
        db.execute("UPDATE leases SET expires=0 WHERE id=?", (lease,))
    deadline = time.monotonic() + 60
    while sum(line.endswith(" leads") for line in
              log_file.read_text(errors="replace").splitlines()) < 2:
        assert time.monotonic() < deadline, log_file.read_text(errors="replace")[-2000:]
        time.sleep(0.5)
    assert "rebalancer lost its lease" in log_file.read_text(errors="replace")
    bucket = f"relead-{uuid.uuid4().hex[:8]}"
    fresh.create_bucket(Bucket=bucket)
    bodies = {f"k{i}": os.urandom(150_000) for i in range(20)}
    for key, body in bodies.items():
        fresh.put_object(Bucket=bucket, Key=key, Body=body)
    new_id = next_volume_id(dev)
    url = start_volume(dev, new_id)
    added = admin(dev, "volume", "add", new_id, "--url", url)
    assert added.returncode == 0, added.stderr
    wait_moved(dev, timeout=300)
    os.kill(pid, 0)  # the same process, still running
    assert all(fresh.get_object(Bucket=bucket, Key=key)["Body"].read() == body
               for key, body in bodies.items())
