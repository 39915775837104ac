"""Atomic conditional writes, raced through two gateway processes with boto3.

- 16 clients race `If-None-Match: *` on one key: exactly one gets 200, the others 412
  or 409, and the stored body is the winner's; the same with a placement volume down.
- 8 clients run an If-Match increment chain of 200 steps: no increment is lost.
- DeleteObject with If-Match, DeleteObjects with a per-object ETag, CompleteMultipartUpload
  and CopyObject with If-None-Match are conditional the same way.
- A gateway killed holding the claim, its version on 2 of 6 volumes: others answer 409
  until the claim expires, then succeed; the dead write is never served.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from shardgate.faults import ENV
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import placement
from tests.e2e.test_kill_points import attempt, post

pytestmark = pytest.mark.e2e
RACERS = 16
CHAIN_CLIENTS, CHAIN_STEPS = 8, 200


@pytest.fixture(scope="module")
def cluster2(tmp_path_factory):
    with own_cluster(tmp_path_factory, "cond") as dev:
        dev.endpoints = [dev.endpoint, dev.second_gateway()]  # type: ignore[attr-defined]
        yield dev


def clients(cluster, n: int) -> list:
    """n clients, alternating between the two gateways; no retries, so every answer
    is seen as it is."""
    return [cluster.client_at(cluster.endpoints[i % 2], *USERS["alice"],
                              retries={"total_max_attempts": 1},
                              max_pool_connections=4)
            for i in range(n)]


def status(call) -> int:  # noqa: ANN001 - a boto3 call in a lambda
    try:
        call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return 200


def race(calls: list) -> list[int]:
    start = threading.Barrier(len(calls))

    def run(call) -> int:  # noqa: ANN001
        start.wait()
        return status(call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def create_once_race(cluster, bucket: str, key: str) -> None:
    racers = clients(cluster, RACERS)
    bodies = [f"racer-{i}".encode() * 100 for i in range(RACERS)]
    answers = race([lambda c=c, b=b: c.put_object(Bucket=bucket, Key=key, Body=b,
                                                  IfNoneMatch="*")
                    for c, b in zip(racers, bodies, strict=True)])
    assert answers.count(200) == 1, answers
    assert set(answers) <= {200, 409, 412}, answers
    winner = bodies[answers.index(200)]
    assert racers[0].get_object(Bucket=bucket, Key=key)["Body"].read() == winner


def test_sixteen_racers_one_winner(cluster2):
    s3 = clients(cluster2, 1)[0]
    s3.create_bucket(Bucket="race")
    for n in range(3):
        create_once_race(cluster2, "race", f"k{n}")


def test_one_winner_with_a_placement_volume_down(cluster2):
    s3 = clients(cluster2, 1)[0]
    s3.create_bucket(Bucket="race-down")
    victim = placement(cluster2, "race-down", "k")[0]
    cluster2.kill_volume(victim)
    try:
        create_once_race(cluster2, "race-down", "k")
    finally:
        cluster2.restart_volume(victim)


def test_if_match_increment_chain_loses_nothing(cluster2):
    s3s = clients(cluster2, CHAIN_CLIENTS)
    s3s[0].create_bucket(Bucket="chain")
    s3s[0].put_object(Bucket="chain", Key="n", Body=b"0")
    done = [0] * CHAIN_CLIENTS
    lock = threading.Lock()
    total = [0]

    def worker(i: int) -> None:
        s3 = s3s[i]
        while True:
            with lock:
                if total[0] >= CHAIN_STEPS:
                    return
            got = s3.get_object(Bucket="chain", Key="n")
            value, etag = int(got["Body"].read()), got["ETag"]
            code = status(lambda v=value, e=etag: s3.put_object(
                Bucket="chain", Key="n", Body=str(v + 1).encode(), IfMatch=e))
            assert code in (200, 409, 412), code
            if code == 200:
                with lock:
                    total[0] += 1
                done[i] += 1

    with ThreadPoolExecutor(CHAIN_CLIENTS) as pool:
        list(pool.map(worker, range(CHAIN_CLIENTS)))
    final = int(s3s[0].get_object(Bucket="chain", Key="n")["Body"].read())
    assert final == sum(done) >= CHAIN_STEPS


def test_conditional_deletes(cluster2):
    s3 = clients(cluster2, 1)[0]
    s3.create_bucket(Bucket="cdel")
    etag = s3.put_object(Bucket="cdel", Key="k", Body=b"x")["ETag"]
    assert status(lambda: s3.delete_object(Bucket="cdel", Key="k", IfMatch='"nope"')) == 412
    assert s3.get_object(Bucket="cdel", Key="k")["Body"].read() == b"x"
    assert status(lambda: s3.delete_object(Bucket="cdel", Key="k", IfMatch=etag)) == 200
    assert status(lambda: s3.head_object(Bucket="cdel", Key="k")) == 404
    etags = {k: s3.put_object(Bucket="cdel", Key=k, Body=k.encode())["ETag"]
             for k in ("a", "b")}
    answer = s3.delete_objects(Bucket="cdel", Delete={"Objects": [
        {"Key": "a", "ETag": etags["a"]}, {"Key": "b", "ETag": '"0000"'}]})
    assert [d["Key"] for d in answer["Deleted"]] == ["a"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("b", "PreconditionFailed")]
    assert s3.get_object(Bucket="cdel", Key="b")["Body"].read() == b"b"


def test_conditional_complete_and_copy(cluster2):
    s3 = clients(cluster2, 1)[0]
    s3.create_bucket(Bucket="ccomp")
    s3.put_object(Bucket="ccomp", Key="src", Body=b"source")
    upload = s3.create_multipart_upload(Bucket="ccomp", Key="k")["UploadId"]
    etag = s3.upload_part(Bucket="ccomp", Key="k", UploadId=upload, PartNumber=1,
                          Body=b"part")["ETag"]
    s3.put_object(Bucket="ccomp", Key="k", Body=b"first")  # the key exists meanwhile
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    assert status(lambda: s3.complete_multipart_upload(
        Bucket="ccomp", Key="k", UploadId=upload, MultipartUpload=parts,
        IfNoneMatch="*")) == 412
    assert s3.get_object(Bucket="ccomp", Key="k")["Body"].read() == b"first"
    s3.complete_multipart_upload(Bucket="ccomp", Key="k", UploadId=upload,
                                 MultipartUpload=parts)  # still open after the 412
    assert status(lambda: s3.copy_object(Bucket="ccomp", Key="k", CopySource="ccomp/src",
                                         IfNoneMatch="*")) == 412
    assert s3.get_object(Bucket="ccomp", Key="k")["Body"].read() == b"part"


@pytest.fixture(scope="module")
def fcluster(tmp_path_factory):
    durability = ("unmarked_seconds=2", "janitor_interval_seconds=0.5",
                  "heal_interval_seconds=0.5")
    with own_cluster(tmp_path_factory, "condf", durability, {ENV: "1"},
                     gateway=("conditional_claim_seconds=3",)) as dev:
        yield dev


@pytest.mark.parametrize("point, at_hit", [("gateway.after_claim", 1),
                                           ("gateway.after_one_commit", 2)])
def test_gateway_killed_holding_the_claim(fcluster, point, at_hit):
    """The gateway dies with the key claimed, before committing or after two of its
    commits answered (the others may have landed): its write either took effect, and
    every later If-None-Match write is 412, or it did not, and after the claim expires
    (409 meanwhile) exactly one later writer wins. Either way what is read is one whole
    write."""
    s3 = fcluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    bucket = f"fkill{at_hit}"
    s3.create_bucket(Bucket=bucket)
    endpoint = fcluster.second_gateway()
    post(f"{endpoint}/-/faults", {"point": point, "at_hit": at_hit})
    doomed = fcluster.client_at(endpoint, *USERS["alice"], retries={"total_max_attempts": 1})
    assert attempt(lambda: doomed.put_object(Bucket=bucket, Key="k", Body=b"dead",
                                             IfNoneMatch="*")) == "cut"
    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answers.append(status(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"live",
                                                    IfNoneMatch="*")))
        if answers[-1] in (200, 412):
            break
        assert answers[-1] in (409, 503), answers
        time.sleep(0.5)
    stored = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert (answers[-1], stored) in ((200, b"live"), (412, b"dead")), (answers, stored)
    if point == "gateway.after_claim":  # nothing committed: once the claim expires, the
        assert (answers[-1], stored) == (200, b"live"), answers  # next writer wins
    assert status(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"again",
                                        IfNoneMatch="*")) == 412
