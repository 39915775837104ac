"""The fault suite: processes SIGKILLed at named points of the write path, deterministically.

For each kill point (shardgate/faults.py) and each number of volumes killed there
together (1, m, m + 1), an overwrite, a server-side copy onto the key and a delete of a
multi-segment object, and an overwrite of a small object (written in one round trip,
its fragments inside the commits), run while the point is armed; the gateway is killed
the same way at its own points. Afterwards, once the dead processes are back and healing has run:
- the key reads back as its last acknowledged version or the newer attempted one,
  byte-exact, never 503;
- no pending row is left, the heal backlog is 0;
- volumes that were not restarted keep no staging file and no archive that nothing owns;
- while the points fired, the client saw no 5xx other than 503.
"""

from __future__ import annotations

import http.client
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from urllib3.exceptions import ProtocolError

from shardgate.faults import ENV
from tests.e2e.cluster import REGION, DevCluster, free_port, wait_http
from tests.e2e.conftest import USERS, own_cluster
from tests.e2e.helpers import placement, volume_requests

pytestmark = pytest.mark.e2e
MIB = 1 << 20
VOLUME_POINTS = ["stage.after_blocks", "stage.after_fsync", "commit.before_txn", "commit.mid_txn",
                 "commit.after_txn", "durable.before_txn", "durable.after_txn"]
GATEWAY_POINTS = ["gateway.after_stage", "gateway.after_commit", "gateway.after_notice"]
SETTLE_SECONDS = 90.0
OPS = ["put", "put-small", "copy", "delete"]
STAGE_FREE = ("delete", "put-small")
STAGE_POINTS = ("stage.after_blocks", "stage.after_fsync")
# At this point a stage has written its whole blocks (around the page cache for parity,
# by default): the new version is big enough that each fragment archive has some.
BLOCKS_POINT = "stage.after_blocks"


@pytest.fixture(scope="module")
def fcluster(tmp_path_factory: pytest.TempPathFactory):
    durability = ("unmarked_seconds=3", "janitor_interval_seconds=1",
                  "heal_interval_seconds=1")
    with own_cluster(tmp_path_factory, "faults", durability, {ENV: "1"}) as cluster:
        yield cluster


def client(endpoint: str):
    access, secret = USERS["alice"]
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=access, aws_secret_access_key=secret,
                        config=Config(retries={"total_max_attempts": 1},
                                      read_timeout=60, connect_timeout=5))


@pytest.fixture(scope="module")
def fbucket(fcluster):
    client(fcluster.endpoint).create_bucket(Bucket="faults")
    return "faults"


def post(url: str, body: dict, token: str | None = None) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def arm_volume(cluster: DevCluster, vid: str, point: str) -> None:
    post(f"{cluster.config.volume(vid).url}/faults", {"point": point},
         cluster.token(vid, "write"))


def disarm_live(cluster: DevCluster) -> None:
    """Disarm every live volume. A point can still fire up to its disarm (a durable notice
    sent late on a loaded machine): such a volume dies instead of answering, and the
    caller restarts whatever is dead afterwards."""
    for vid in cluster.volume_ids:
        if not cluster.volume_alive(vid):
            continue
        try:
            post(f"{cluster.config.volume(vid).url}/faults", {"disarm": True},
                 cluster.token(vid, "write"))
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
            deadline = time.monotonic() + 10
            while cluster.volume_alive(vid):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def attempt(call) -> str:
    """'ok', '503', or 'cut' (connection lost: the gateway died); anything else fails."""
    try:
        call()
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 503, f"unexpected {status}: {exc}"
        return "503"
    except (ConnectionClosedError, EndpointConnectionError, ProtocolError,
            ConnectionError):
        return "cut"
    return "ok"


def db_rows(cluster: DevCluster, vid: str, sql: str, args: tuple = ()) -> list[tuple]:
    path = Path(cluster.config.volume(vid).data_dir) / "index.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def settled(cluster: DevCluster, key: str) -> bool:
    for vid in cluster.volume_ids:
        if db_rows(cluster, vid, "SELECT COUNT(*) FROM heal_queue")[0][0]:
            return False
        if db_rows(cluster, vid, "SELECT COUNT(*) FROM objects WHERE key=? AND durable=0",
                   (key,))[0][0]:
            return False
    return True


def wait_noticed(cluster: DevCluster, keys: list[str]) -> None:
    """Until no row of `keys` is pending: the durable notices of the versions written
    before a point is armed have landed, so none of them trips a durable.* point meant
    for the write under test (such a point would fire early, even while being armed)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while any(db_rows(cluster, vid, "SELECT COUNT(*) FROM objects WHERE key=? AND"
                      " durable=0", (key,))[0][0]
              for vid in cluster.volume_ids for key in keys):
        assert time.monotonic() < deadline, f"notices for {keys} never landed"
        time.sleep(0.05)


def orphans(cluster: DevCluster, vid: str) -> tuple[list[str], set[str]]:
    """(staging files, archive files nothing owns or keeps) on one volume."""
    root = Path(cluster.config.volume(vid).data_dir)
    staging = sorted(os.listdir(root / "staging"))
    files = {name for _, _, names in os.walk(root / "fragments") for name in names}
    kept = {r[0] for r in db_rows(cluster, vid, "SELECT archive_id FROM object_archives"
                                  " UNION SELECT archive_id FROM parts"
                                  " UNION SELECT archive_id FROM upload_archives"
                                  " UNION SELECT archive_id FROM retired")}
    return staging, files - kept


def wait_settled(cluster: DevCluster, key: str, untouched: list[str],
                 before: dict[str, set[str]]) -> None:
    """Healed, nothing pending, and no new orphan on the volumes never restarted in
    this case (a volume killed between rename and row in an earlier case keeps that
    file until a scrub collects it: `before` holds those)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        left = {vid: (staging, files - before[vid])
                for vid in untouched for staging, files in [orphans(cluster, vid)]}
        clean = all(not staging and not files for staging, files in left.values())
        if settled(cluster, key) and clean:
            return
        assert time.monotonic() < deadline, f"not settled: {left}"
        time.sleep(0.5)


def read(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchKey":
            raise
        return None


def check_list_agrees(s3, bucket: str, key: str) -> None:
    """While versions may still be pending, LIST shows the key exactly when GET finds it
    (when both can answer: with volumes down either may be 503)."""
    try:
        found = read(s3, bucket, key) is not None
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    except ClientError as exc:
        assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503, exc
        return
    assert [o["Key"] for o in listed if o["Key"] == key] == ([key] if found else [])


def run_case(cluster: DevCluster, bucket: str, key: str, op: str, arm, victims_back,
             big: bool = False) -> None:
    """Write v1, arm, overwrite (or delete) through the armed path, bring the dead back,
    let healing run, then check the outcome. `big`: a new version of 9 MiB (each
    fragment archive over 2 MiB), else of 1 MiB."""
    s3 = client(cluster.endpoint)
    before = {vid: orphans(cluster, vid)[1] for vid in cluster.volume_ids}
    small = op == "put-small"  # written in one round trip, fragments in the commits
    old = os.urandom(3000 if small else 2 * MIB + 1234)
    s3.put_object(Bucket=bucket, Key=key, Body=old)
    new = os.urandom(5000 if small else (9 if big else 1) * MIB + 4321)
    if op == "copy":  # the new version comes from another key, streamed server-side
        s3.put_object(Bucket=bucket, Key=key + ".src", Body=new)
    wait_noticed(cluster, [key, key + ".src"])
    endpoint = arm()
    writer = client(endpoint)
    if op in ("put", "put-small"):
        outcome = attempt(lambda: writer.put_object(Bucket=bucket, Key=key, Body=new))
    elif op == "copy":
        outcome = attempt(lambda: writer.copy_object(Bucket=bucket, Key=key,
                                                     CopySource=f"{bucket}/{key}.src"))
    else:
        outcome = attempt(lambda: writer.delete_object(Bucket=bucket, Key=key))
    check_list_agrees(s3, bucket, key)
    restarted = victims_back()
    wait_settled(cluster, key, [v for v in cluster.volume_ids if v not in restarted],
                 before)
    got = read(s3, bucket, key)
    attempted = None if op == "delete" else new
    if outcome == "ok":
        assert got == attempted, f"{op} acknowledged but {key} reads otherwise"
    else:
        assert got in (old, attempted), f"{key} reads neither the old nor the new version"


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("point", VOLUME_POINTS)
def test_volumes_killed_at_point(fcluster, fbucket, point, op, count):
    if op in STAGE_FREE and point in STAGE_POINTS:
        pytest.skip(f"a {op} stages nothing")
    key = f"kp/{point}/{op}/{count}"
    victims = list(placement(fcluster, fbucket, key)[:count])
    if point == BLOCKS_POINT:  # parity first: by default only parity is written direct
        victims = list(placement(fcluster, fbucket, key)[::-1][:count])

    def arm() -> str:
        for vid in victims:
            arm_volume(fcluster, vid, point)
        return fcluster.endpoint

    def back() -> list[str]:
        # The durable notice is sent after the client's answer: give armed points that
        # the request reaches a moment to fire before the survivors are disarmed.
        deadline = time.monotonic() + 3.0
        while any(fcluster.volume_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        disarm_live(fcluster)
        dead = [vid for vid in fcluster.volume_ids if not fcluster.volume_alive(vid)]
        for vid in dead:
            fcluster.restart_volume(vid)
        if point == BLOCKS_POINT:  # every victim stages, so every one reached the point
            assert set(victims) <= set(dead), (victims, dead)
        return dead

    run_case(fcluster, fbucket, key, op, arm, back, big=point == BLOCKS_POINT)


GATEWAY_CASES = [(p, 1) for p in GATEWAY_POINTS] + [
    ("gateway.after_one_commit", j) for j in range(1, 6)]  # after j of the k+m commits


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("point, at_hit", GATEWAY_CASES)
def test_gateway_killed_at_point(fcluster, fbucket, point, at_hit, op):
    if op in STAGE_FREE and point == "gateway.after_stage":
        pytest.skip(f"a {op} stages nothing")
    arm, back = doomed_gateway(fcluster, point, at_hit)
    run_case(fcluster, fbucket, f"kg/{point}/{at_hit}/{op}", op, arm, back)


def doomed_gateway(cluster: DevCluster, point: str, at_hit: int):
    """(arm, back) for a case: arm starts a second gateway with `point` armed at its
    `at_hit`-th hit and returns its endpoint; back checks that it killed itself there."""
    port = free_port()
    config = cluster.data / f"gateway-{port}.toml"
    text = (cluster.data / "cluster.toml").read_text()
    config.write_text(text.replace(f"port = {cluster.port}", f"port = {port}"))
    proc: subprocess.Popen | None = None

    def arm() -> str:
        nonlocal proc
        proc = subprocess.Popen([sys.executable, "-m", "shardgate", "gateway", "--config",
                                 str(config)], env={**os.environ, ENV: "1"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(f"{endpoint}/-/health")
        post(f"{endpoint}/-/faults", {"point": point, "at_hit": at_hit})
        return endpoint

    def back() -> list[str]:
        assert proc is not None
        proc.wait(30)  # it killed itself at the point
        assert proc.returncode == -9
        return []

    return arm, back


def run_batch_case(cluster: DevCluster, bucket: str, prefix: str, arm, victims_back) -> None:
    """Small overwrites of 24 keys from 12 threads at once, so that commits to each
    volume go in batches, while a point fires inside one; afterwards every acknowledged
    overwrite reads back new, every other one old or new."""
    keys = [f"{prefix}/{i}" for i in range(24)]
    s3 = client(cluster.endpoint)
    before = {vid: orphans(cluster, vid)[1] for vid in cluster.volume_ids}
    old = {key: os.urandom(3000) for key in keys}
    new = {key: os.urandom(4000) for key in keys}
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=old[key])
    wait_noticed(cluster, keys)
    endpoint = arm()
    writers = [client(endpoint) for _ in range(12)]

    def overwrite(n: int) -> list[tuple[str, str]]:
        mine = keys[n::len(writers)]
        return [(key, attempt(lambda key=key: writers[n].put_object(
            Bucket=bucket, Key=key, Body=new[key]))) for key in mine]

    with ThreadPoolExecutor(len(writers)) as pool:
        outcomes = dict(pair for done in pool.map(overwrite, range(len(writers)))
                        for pair in done)
    restarted = victims_back()
    untouched = [v for v in cluster.volume_ids if v not in restarted]
    for key in keys:
        wait_settled(cluster, key, untouched, before)
    for key in keys:
        got = read(s3, bucket, key)
        if outcomes[key] == "ok":
            assert got == new[key], f"{key} acknowledged but reads otherwise"
        else:
            assert got in (old[key], new[key]), f"{key} reads neither version"


@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("point", ["commit.mid_txn", "commit.after_txn"])
def test_volumes_killed_inside_a_batch_of_commits(fcluster, fbucket, point, count):
    prefix = f"kb/{point}/{count}"
    victims = list(placement(fcluster, fbucket, f"{prefix}/0")[:count])
    survivors = [v for v in fcluster.volume_ids if v not in victims]
    batched = volume_requests(fcluster, "POST /objects/commits", None, survivors)

    def arm() -> str:
        for vid in victims:  # the 8th commit each takes: with others of its batch
            post(f"{fcluster.config.volume(vid).url}/faults", {"point": point, "at_hit": 8},
                 fcluster.token(vid, "write"))
        return fcluster.endpoint

    def back() -> list[str]:
        disarm_live(fcluster)
        dead = [vid for vid in fcluster.volume_ids if not fcluster.volume_alive(vid)]
        assert set(victims) <= set(dead)
        for vid in dead:
            fcluster.restart_volume(vid)
        return dead

    run_batch_case(fcluster, fbucket, prefix, arm, back)
    assert volume_requests(fcluster, "POST /objects/commits", None, survivors) > batched


def test_gateway_killed_inside_a_batch_of_commits(fcluster, fbucket):
    # the 40th commit answered: some overwrites acknowledged, others part-committed
    arm, back = doomed_gateway(fcluster, "gateway.after_one_commit", 40)
    run_batch_case(fcluster, fbucket, "kb/gateway", arm, back)
