"""Several gateways on one cluster: read-after-write across them (1,000 overwrites, the
reader never going back), conditional writes and multipart uploads that cross gateways,
and a volume added while one gateway's map watch is held back: its writes are fenced and
retried, never lost, and a multipart upload spanning the change completes byte-exact."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.rebalance_helpers import admin, check_all, start_volume, wait_moved

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
