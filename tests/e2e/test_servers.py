"""The HTTP servers are selectable per role: the default cluster (gateway under
Hypercorn, volumes under Granian), one all under Hypercorn, and one all under Granian with
two gateway worker processes serve the S3 paths a client uses byte for byte, including a
read with a volume killed. Every other end-to-end module runs under the defaults (or
the server its `--server` option names).
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.e2e.cluster import DevCluster, free_port
from tests.e2e.conftest import USERS, write_users
from tests.e2e.helpers import placement

pytestmark = pytest.mark.e2e

# setup -> (`shardgate dev` options, the gateway's server, the volumes' server)
SETUPS = {"default": ([], "hypercorn", "granian"),
          "hypercorn": (["--server", "hypercorn"], "hypercorn", "hypercorn"),
          "granian-2-workers": (["--server", "granian", "--gateway-workers", "2"],
                                "granian", "granian")}
MARKERS = {"granian": "Starting granian", "hypercorn": "Running on"}


@pytest.fixture(scope="module", params=sorted(SETUPS))
def gcluster(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=SETUPS[request.param][0]).start()
    dev.setup = request.param
    try:
        yield dev
    finally:
        dev.stop()


def test_every_process_runs_the_chosen_server(gcluster):
    logs = gcluster.data / "logs"
    _, gateway, volumes = SETUPS[gcluster.setup]
    assert MARKERS[gateway] in (logs / "gateway.log").read_text()
    for name in gcluster.volume_ids:
        assert MARKERS[volumes] in (logs / f"{name}.log").read_text(), name
    if gcluster.setup == "granian-2-workers":
        gateway_log = (logs / "gateway.log").read_text()
        assert "Started worker-1" in gateway_log and "Started worker-2" in gateway_log


def test_workers_count_requests_together_and_never_read_old(gcluster):
    """Overwrites then reads on fresh connections (either worker may answer each): every
    read returns the version just written; /-/metrics counts every worker's requests."""
    s3 = gcluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="overwrites")
    for n in range(12):
        body = f"version {n} ".encode() * 1000
        s3.put_object(Bucket="overwrites", Key="k", Body=body)
        for _ in range(3):
            fresh = gcluster.client(*USERS["alice"])
            assert fresh.get_object(Bucket="overwrites", Key="k")["Body"].read() == body
    with urllib.request.urlopen(f"{gcluster.endpoint}/-/metrics", timeout=30) as resp:
        text = resp.read().decode()
    puts = re.search(r'shardgate_requests_total\{operation="PutObject",status="200"\} (\S+)',
                     text)
    assert puts and float(puts.group(1)) >= 12


def test_objects_round_trip(gcluster):
    s3 = gcluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="objects")
    body = os.urandom(5 * 1024 * 1024 + 17)  # several segments and a short tail
    s3.put_object(Bucket="objects", Key="big", Body=body)
    got = s3.get_object(Bucket="objects", Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    ranged = s3.get_object(Bucket="objects", Key="big", Range="bytes=1048570-2097160")
    assert ranged["Body"].read() == body[1048570:2097161]
    upload = s3.create_multipart_upload(Bucket="objects", Key="mpu")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket="objects", Key="mpu", UploadId=upload, PartNumber=n,
        Body=body[(n - 1) * 5242880:n * 5242880])["ETag"]} for n in (1, 2)]
    s3.complete_multipart_upload(Bucket="objects", Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket="objects", Key="mpu")["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="objects")["Contents"]] == ["big", "mpu"]
    s3.delete_object(Bucket="objects", Key="mpu")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket="objects", Key="mpu")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_read_with_a_volume_killed(gcluster):
    s3 = gcluster.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="degraded")
    body = os.urandom(3 * 1024 * 1024)
    s3.put_object(Bucket="degraded", Key="k", Body=body)
    victim = placement(gcluster, "degraded", "k")[0]
    gcluster.kill_volume(victim)
    try:
        assert s3.get_object(Bucket="degraded", Key="k")["Body"].read() == body
    finally:
        gcluster.restart_volume(victim)
