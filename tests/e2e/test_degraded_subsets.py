"""Every 2-of-6 subset of volumes down, in-process: the gateway app runs in this process
behind an injected volume client that refuses the chosen volumes; the volumes are real."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading

import boto3
import pytest
from hypercorn.asyncio import serve

from gateway.app import create_app
from gateway.objects.cluster import Cluster
from gateway.objects.volume_client import VolumeClient
from gateway.objects.volume_errors import VolumeUnavailable
from shardgate.serving import hypercorn_config
from tests.e2e.cluster import REGION, free_port, wait_http
from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e
MIB = 1 << 20


class PartitionedVolumeClient(VolumeClient):
    """A volume client whose `down` volumes are unreachable, as if their hosts died."""

    down: frozenset[str] = frozenset()

    def _check(self, volume_id: str) -> None:
        if volume_id in self.down:
            raise VolumeUnavailable(volume_id, "partitioned by the test")

    async def _request(self, volume_id: str, *args, **kwargs):
        self._check(volume_id)
        return await super()._request(volume_id, *args, **kwargs)

    async def open_archive(self, volume_id: str, *args, **kwargs):
        self._check(volume_id)
        return await super().open_archive(volume_id, *args, **kwargs)


@pytest.fixture(scope="module")
def partitioned(cluster):
    with partitioned_gateway(cluster) as running:
        yield running


@contextlib.contextmanager
def partitioned_gateway(cluster):
    """A gateway in this process on the cluster's volumes, behind a client whose `down`
    volumes are unreachable; yields (that client, a boto3 client of the gateway)."""
    config = cluster.config
    volumes = PartitionedVolumeClient(config)
    app = create_app(config, Cluster.build(config, volumes))
    port = free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(app, hypercorn_config("127.0.0.1", port),
                                      shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_http(f"http://127.0.0.1:{port}/-/health")
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                      aws_access_key_id=USERS["alice"][0],
                      aws_secret_access_key=USERS["alice"][1])
    yield volumes, s3
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_every_two_volume_subset(partitioned, cluster):
    volumes, s3 = partitioned
    s3.create_bucket(Bucket="subsets")
    base = os.urandom(3 * MIB + 11)
    s3.put_object(Bucket="subsets", Key="base", Body=base)
    subsets = list(itertools.combinations(cluster.volume_ids, 2))
    assert len(subsets) == 15
    for down in subsets:
        volumes.down = frozenset(down)
        assert s3.get_object(Bucket="subsets", Key="base")["Body"].read() == base, down
        ranged = s3.get_object(Bucket="subsets", Key="base", Range=f"bytes={MIB - 3}-{MIB + 3}")
        assert ranged["Body"].read() == base[MIB - 3:MIB + 4], down
        fresh = os.urandom(2 * MIB + 1)
        key = "fresh-" + "-".join(down)
        s3.put_object(Bucket="subsets", Key=key, Body=fresh)
        assert s3.get_object(Bucket="subsets", Key=key)["Body"].read() == fresh, down
    volumes.down = frozenset()
    for down in subsets:  # everything written degraded reads back with all volumes up
        key = "fresh-" + "-".join(down)
        assert s3.head_object(Bucket="subsets", Key=key)["ContentLength"] == 2 * MIB + 1
    assert len(s3.list_objects_v2(Bucket="subsets")["Contents"]) == 16
