"""`aws s3 cp` and `aws s3 rm --recursive` (awscli v1, in its own venv because it pins
botocore exactly) against the local cluster."""

from __future__ import annotations

import hashlib
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e
MIB = 1 << 20
VENV = Path(os.environ.get("SHARDGATE_AWSCLI_VENV",
                           Path.home() / ".cache" / "shardgate-tests" / "awscli-v1"))


@pytest.fixture(scope="session")
def aws() -> Path:
    binary = VENV / "bin" / "aws"
    if not binary.exists():
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                        "awscli>=1.36,<2"], check=True)
    return binary


def run_aws(aws: Path, cluster, *args: str) -> str:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": USERS["alice"][0],
           "AWS_SECRET_ACCESS_KEY": USERS["alice"][1], "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    done = subprocess.run([str(aws), "--endpoint-url", cluster.endpoint, *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def test_cp_100mib_up_and_down(aws, cluster, bucket, tmp_path):
    source = tmp_path / "up.bin"
    with open(source, "wb") as fh:
        for _ in range(100 // 4):
            fh.write(os.urandom(4 * MIB))
    run_aws(aws, cluster, "s3", "cp", str(source), f"s3://{bucket}/data/up.bin")
    target = tmp_path / "down.bin"
    run_aws(aws, cluster, "s3", "cp", f"s3://{bucket}/data/up.bin", str(target))
    assert _sha256(target) == _sha256(source)
    assert "up.bin" in run_aws(aws, cluster, "s3", "ls", f"s3://{bucket}/data/")


def test_rm_recursive_empties_prefix(aws, cluster, s3, bucket):
    for i in range(30):
        s3.put_object(Bucket=bucket, Key=f"logs/{i:02d}.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"y")
    run_aws(aws, cluster, "s3", "rm", "--recursive", f"s3://{bucket}/logs/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["keep.txt"]
