"""Complete, Abort and UploadPart of one upload racing each other, on a real cluster.

The sequential cases are deterministic; the concurrent ones run each race several times
with two clients released by a barrier and check what must hold whatever the
interleaving: never both Complete and Abort, the key always reads back whole (the new
object or the old one), and no archive of the upload is left behind on any volume.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shardgate.manifest import ObjectManifest
from tests.e2e.cluster import DevCluster
from tests.e2e.conftest import USERS
from tests.e2e.helpers import incarnation, placement, volume_json

pytestmark = pytest.mark.e2e
MIB = 1 << 20
ROUNDS = 8
REUPLOAD_JITTER = 0.2  # seconds: about what staging a 5 MiB part takes here


def fragment_files(cluster: DevCluster) -> set[tuple[str, str]]:
    """(volume id, archive id) of every fragment archive file in the cluster, less the
    retired ones (superseded, kept readable for the grace period, then freed)."""
    found = set()
    for spec in cluster.config.volumes:
        retired = set(volume_json(cluster, spec.id, "/retired")["archives"])
        for _, _, names in os.walk(Path(spec.data_dir) / "fragments"):
            found.update((spec.id, name) for name in names if name not in retired)
    return found


def owned_by_a_row(cluster: DevCluster, volume_id: str, archive: str) -> bool:
    path = Path(cluster.config.volume(volume_id).data_dir) / "index.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT 1 FROM object_archives WHERE archive_id=?",
                            (archive,)).fetchone() is not None
    finally:
        conn.close()


def staged_files(cluster: DevCluster) -> set[tuple[str, str]]:
    """Staged files of client writes (the healer's own, *.heal.N, come and go)."""
    return {(spec.id, name) for spec in cluster.config.volumes
            for name in os.listdir(Path(spec.data_dir) / "staging") if ".heal." not in name}


@pytest.fixture
def new_stages(cluster: DevCluster) -> Callable[[], set[tuple[str, str]]]:
    """Staged files that appeared during the test (others' tests may leave some)."""
    before = staged_files(cluster)
    return lambda: staged_files(cluster) - before


def object_archives(cluster: DevCluster, bucket: str, key: str) -> set[tuple[str, str]]:
    """(volume id, archive id) the key's latest manifest places on the volumes."""
    inc = incarnation(cluster, bucket)
    answers = []
    for vid in placement(cluster, bucket, key):
        try:
            answers += volume_json(cluster, vid, f"/objects/latest?incarnation={inc}"
                                                 f"&key={key}")["versions"]
        except urllib.error.HTTPError:
            continue
    manifest = ObjectManifest.from_dict(max(answers, key=lambda a: a["version_id"])
                                        ["manifest"])
    return {(vid, archive) for vid in placement(cluster, bucket, key)
            for archive in manifest.archives_on(vid)}


def volume_call(cluster: DevCluster, volume_id: str, method: str, path: str,
                body: dict | None = None) -> int:
    """One write-scoped call to a volume; its HTTP status."""
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}{path}",
                                     method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id, 'write')}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def code(call: Callable[[], Any]) -> str:
    """"OK" or the S3 error code of a call."""
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "OK"


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def one_part_upload(s3, bucket: str, key: str, data: bytes) -> tuple[str, list[dict]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=1,
                          Body=data)["ETag"]
    return uid, [{"PartNumber": 1, "ETag": etag}]


def race(*calls: Callable[[], Any], jitter: float = 0.03) -> list[str]:
    """Run the calls on their own threads, released together; their outcome codes.

    Every call after the first starts up to `jitter` seconds late (at random), since
    a Complete has more to do (list the parts) before it reaches the volumes than
    an Abort: without it the Abort would win every time.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = [""] * len(calls)

    def run(n: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        if n:
            time.sleep(random.uniform(0, jitter))
        outcomes[n] = code(call)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.fixture(scope="module")
def raw(cluster: DevCluster):
    """Clients that do not retry, so every 503 of a lost race shows."""
    return [cluster.client(*USERS["alice"], retries={"max_attempts": 1}) for _ in range(2)]


def test_complete_after_abort_is_no_such_upload(cluster, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"previous")
    before = fragment_files(cluster)
    uid, parts = one_part_upload(s3, bucket, "k", b"new data")
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)
    assert code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=uid, MultipartUpload={"Parts": parts})) \
        == "NoSuchUpload"
    assert code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)) \
        == "NoSuchUpload"
    assert read(s3, bucket, "k") == b"previous"
    assert fragment_files(cluster) == before
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_abort_after_complete_is_no_such_upload(cluster, s3, bucket, new_stages):
    data = os.urandom(MIB + 7)
    uid, parts = one_part_upload(s3, bucket, "k", data)
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=uid,
                                 MultipartUpload={"Parts": parts})
    assert code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=uid)) \
        == "NoSuchUpload"
    assert read(s3, bucket, "k") == data
    assert code(lambda: s3.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=2,
                                       Body=b"late")) == "NoSuchUpload"
    assert read(s3, bucket, "k") == data
    assert new_stages() == set()


def test_parts_left_out_of_complete_leave_no_archives(cluster, s3, bucket, new_stages):
    before = fragment_files(cluster)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]

    def put(number: int, body: bytes) -> dict:
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=number,
                              Body=body)["ETag"]
        return {"PartNumber": number, "ETag": etag}

    first = os.urandom(5 * MIB)
    one = put(1, first)
    put(2, b"replaced version of part two")
    two = put(2, b"part two")
    put(3, b"part three, never completed")
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                       MultipartUpload={"Parts": [one, two]})
    md5s = hashlib.md5(first).digest() + hashlib.md5(b"part two").digest()
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-2"'
    assert read(s3, bucket, "mp") == first + b"part two"
    mine = object_archives(cluster, bucket, "mp")
    new = fragment_files(cluster) - before
    assert mine <= new
    # anything else new was written meanwhile by the healer for another object's row
    assert all(owned_by_a_row(cluster, vid, archive) for vid, archive in new - mine)
    assert new_stages() == set()


def test_completing_twice_answers_the_same(cluster, s3, bucket):
    data = os.urandom(2 * MIB)
    uid, parts = one_part_upload(s3, bucket, "twice", data)
    first = s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="twice", UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    assert again["ETag"] == first["ETag"]
    assert (again["Bucket"], again["Key"]) == (bucket, "twice")
    assert again.get("ChecksumCRC64NVME") == first.get("ChecksumCRC64NVME")
    assert read(s3, bucket, "twice") == data
    # once the key is overwritten, the upload is just gone
    s3.put_object(Bucket=bucket, Key="twice", Body=b"newer")
    assert code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="twice", UploadId=uid, MultipartUpload={"Parts": parts})) \
        == "NoSuchUpload"


def test_a_held_claim_keeps_other_ops_off(cluster, s3, bucket, raw):
    """Another gateway's claim, played through the volume API: Complete waits for it."""
    uid, parts = one_part_upload(s3, bucket, "held", b"held data")
    volumes = placement(cluster, bucket, "held")
    claim = {"token": "other-gateway", "op": "abort"}
    assert [volume_call(cluster, v, "POST", f"/uploads/{uid}/claim", claim)
            for v in volumes] == [200] * len(volumes)
    complete = lambda: raw[0].complete_multipart_upload(  # noqa: E731
        Bucket=bucket, Key="held", UploadId=uid, MultipartUpload={"Parts": parts})
    assert code(complete) == "ServiceUnavailable"
    assert code(lambda: raw[0].abort_multipart_upload(Bucket=bucket, Key="held",
                                                      UploadId=uid)) == "ServiceUnavailable"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="held")) == "404"
    # released on half the placement: still no write quorum for anyone
    for v in volumes[:3]:
        assert volume_call(cluster, v, "DELETE", f"/uploads/{uid}/claim?token=other-gateway") \
            == 204
    assert code(complete) == "ServiceUnavailable"
    assert code(lambda: s3.head_object(Bucket=bucket, Key="held")) == "404"
    for v in volumes[3:]:
        assert volume_call(cluster, v, "DELETE", f"/uploads/{uid}/claim?token=other-gateway") \
            == 204
    assert code(complete) == "OK"
    assert read(s3, bucket, "held") == b"held data"


def test_an_abort_that_died_half_way_is_finished(cluster, s3, bucket):
    """A gateway aborted on half the placement and died: the upload is over for good."""
    before = fragment_files(cluster)
    uid, parts = one_part_upload(s3, bucket, "half", b"half aborted")
    volumes = placement(cluster, bucket, "half")
    for v in volumes[:3]:
        assert volume_call(cluster, v, "DELETE", f"/uploads/{uid}") == 204
    assert code(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="half", UploadId=uid, MultipartUpload={"Parts": parts})) \
        == "NoSuchUpload"
    assert code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="half", UploadId=uid)) \
        == "NoSuchUpload"
    assert fragment_files(cluster) == before
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def complete_abort_round(cluster, s3, bucket, raw, old: bytes, new: bytes) -> tuple[str, str]:
    """One Complete racing one Abort of a fresh upload over an existing object."""
    uid, parts = one_part_upload(s3, bucket, "race", new)

    def complete(client) -> Callable[[], Any]:
        return lambda: client.complete_multipart_upload(
            Bucket=bucket, Key="race", UploadId=uid, MultipartUpload={"Parts": parts})

    completed, aborted = race(complete(raw[0]), lambda: raw[1].abort_multipart_upload(
        Bucket=bucket, Key="race", UploadId=uid))
    assert completed in ("OK", "NoSuchUpload", "ServiceUnavailable"), completed
    assert aborted in ("OK", "NoSuchUpload", "ServiceUnavailable"), aborted
    assert not (completed == "OK" and aborted == "OK")
    # whatever happened, the key reads back whole: the new object or the old one
    expected = new if completed == "OK" else old
    assert read(s3, bucket, "race") == expected
    # a retried Complete agrees with the outcome
    again = code(complete(s3))
    if completed == "OK":
        assert again == "OK"
    elif aborted == "OK":
        assert again == "NoSuchUpload"
    else:  # neither won: the upload is intact, and the retry completes it
        assert again == "OK"
        expected = new
    assert read(s3, bucket, "race") == expected
    return completed, aborted


def test_complete_racing_abort(cluster, s3, bucket, raw, new_stages):
    before = fragment_files(cluster)
    old = os.urandom(300_000)
    for n in range(ROUNDS):
        s3.put_object(Bucket=bucket, Key="race", Body=old)
        complete_abort_round(cluster, s3, bucket, raw, old, os.urandom(MIB + n))
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert new_stages() == set()
    assert fragment_files(cluster) - before == object_archives(cluster, bucket, "race")


def reupload_round(s3, bucket, raw, same_bytes: bool) -> None:
    """Complete racing a re-upload of part 1 (same bytes: a client retry)."""
    first, last = os.urandom(5 * MIB), os.urandom(1000)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="re")["UploadId"]
    one = s3.upload_part(Bucket=bucket, Key="re", UploadId=uid, PartNumber=1,
                         Body=first)["ETag"]
    two = s3.upload_part(Bucket=bucket, Key="re", UploadId=uid, PartNumber=2,
                         Body=last)["ETag"]
    parts = [{"PartNumber": 1, "ETag": one}, {"PartNumber": 2, "ETag": two}]
    body = first if same_bytes else os.urandom(5 * MIB)
    # the re-upload first: its commit must land about when the Complete is under way
    reuploaded, completed = race(
        lambda: raw[1].upload_part(Bucket=bucket, Key="re", UploadId=uid, PartNumber=1,
                                   Body=body),
        lambda: raw[0].complete_multipart_upload(
            Bucket=bucket, Key="re", UploadId=uid, MultipartUpload={"Parts": parts}),
        jitter=REUPLOAD_JITTER)
    assert reuploaded in ("OK", "NoSuchUpload", "ServiceUnavailable"), reuploaded
    if completed == "OK":
        # the object is what the Complete named, readable in full (never 503)
        assert read(s3, bucket, "re") == first + last
    else:  # new bytes landed first: the listed ETag no longer matches
        assert completed == "InvalidPart" and not same_bytes, completed
        s3.abort_multipart_upload(Bucket=bucket, Key="re", UploadId=uid)


def test_part_reuploaded_during_complete(cluster, s3, bucket, raw, new_stages):
    before = fragment_files(cluster)
    for n in range(ROUNDS):
        reupload_round(s3, bucket, raw, same_bytes=n % 2 == 1)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert new_stages() == set()
    assert fragment_files(cluster) - before == object_archives(cluster, bucket, "re")


def part_abort_round(cluster, s3, bucket, raw, body: bytes) -> None:
    """UploadPart racing Abort; the upload ends aborted either way."""
    uid, _ = one_part_upload(s3, bucket, "pa", b"first part")
    uploaded, aborted = race(
        lambda: raw[0].upload_part(Bucket=bucket, Key="pa", UploadId=uid, PartNumber=2,
                                   Body=body),
        lambda: raw[1].abort_multipart_upload(Bucket=bucket, Key="pa", UploadId=uid))
    assert uploaded in ("OK", "NoSuchUpload", "ServiceUnavailable"), uploaded
    if aborted != "OK":
        assert code(lambda: s3.abort_multipart_upload(Bucket=bucket, Key="pa",
                                                      UploadId=uid)) in ("OK", "NoSuchUpload")
    for vid in placement(cluster, bucket, "pa"):
        assert volume_json(cluster, vid, f"/uploads/{uid}/parts") == {"parts": []}


def test_part_racing_abort_leaves_nothing(cluster, s3, bucket, raw, new_stages):
    before = fragment_files(cluster)
    for n in range(ROUNDS):
        part_abort_round(cluster, s3, bucket, raw, os.urandom(3 * MIB + n))
    assert fragment_files(cluster) == before
    assert new_stages() == set()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
