"""`[durability] min_write_fragments`: no write is acknowledged below it."""

from __future__ import annotations

import os
import time

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import USERS, own_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory):
    with own_cluster(tmp_path_factory, "strict", ("min_write_fragments=6",)) as cluster:
        yield cluster


def test_all_six_fragments_or_no_acknowledgement(strict):
    s3 = strict.client(*USERS["alice"], retries={"total_max_attempts": 1})
    s3.create_bucket(Bucket="strict")
    old = os.urandom(1 << 20)
    s3.put_object(Bucket="strict", Key="k", Body=old)
    strict.kill_volume("v3")
    try:
        time.sleep(1.2)
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket="strict", Key="k", Body=os.urandom(1 << 20))
        assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
        # reads still need only the write quorum
        assert s3.get_object(Bucket="strict", Key="k")["Body"].read() == old
    finally:
        strict.restart_volume("v3")
    new = os.urandom(1 << 20)
    s3.put_object(Bucket="strict", Key="k", Body=new)
    assert s3.get_object(Bucket="strict", Key="k")["Body"].read() == new
