"""The whole cluster under Granian (`shardgate dev --server granian`): the S3 paths a
client uses work the same, byte for byte, including a read with a volume killed.

Granian is not the default server (docs/performance.md says what it must pass first);
this shows the selectable server is real, not what it would take to adopt it.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from tests.e2e.cluster import DevCluster, free_port
from tests.e2e.conftest import USERS, write_users
from tests.e2e.helpers import placement

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gcluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("granian")
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=["--server", "granian"]).start()
    try:
        yield dev
    finally:
        dev.stop()


def test_every_process_runs_granian(gcluster):
    logs = gcluster.data / "logs"
    for name in ["gateway", *gcluster.volume_ids]:
        assert "Starting granian" in (logs / f"{name}.log").read_text(), name


def test_objects_round_trip(gcluster):
    s3 = gcluster.client(*USERS["alice"])
    s3.create_bucket(Bucket="gran")
    body = os.urandom(5 * 1024 * 1024 + 17)  # several segments and a short tail
    s3.put_object(Bucket="gran", Key="big", Body=body)
    got = s3.get_object(Bucket="gran", Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    ranged = s3.get_object(Bucket="gran", Key="big", Range="bytes=1048570-2097160")
    assert ranged["Body"].read() == body[1048570:2097161]
    upload = s3.create_multipart_upload(Bucket="gran", Key="mpu")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket="gran", Key="mpu", UploadId=upload, PartNumber=n,
        Body=body[(n - 1) * 5242880:n * 5242880])["ETag"]} for n in (1, 2)]
    s3.complete_multipart_upload(Bucket="gran", Key="mpu", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket="gran", Key="mpu")["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="gran")["Contents"]] == ["big", "mpu"]
    s3.delete_object(Bucket="gran", Key="mpu")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket="gran", Key="mpu")
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
