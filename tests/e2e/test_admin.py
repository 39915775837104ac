"""`shardgate admin status|heal` against a real cluster, and the gateway's and volumes'
metrics and readiness endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import DevCluster
from tests.e2e.conftest import USERS, own_cluster

pytestmark = pytest.mark.e2e
HEAL_TIMEOUT = "180"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster of this module's own: its heal backlog is these tests' alone (other
    modules leave objects broken on purpose, whose entries never drain)."""
    with own_cluster(tmp_path_factory, "admin") as dev:
        yield dev


@pytest.fixture(scope="module")
def s3(cluster: DevCluster):
    return cluster.client(*USERS["alice"])


def admin(cluster: DevCluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardgate", "admin", "--config",
                           str(cluster.data / "cluster.toml"), *args],
                          capture_output=True, text=True, timeout=300)


def status_json(cluster: DevCluster) -> tuple[int, dict]:
    done = admin(cluster, "status", "--json")
    return done.returncode, json.loads(done.stdout)


def by_id(status: dict) -> dict[str, dict]:
    return {v["id"]: v for v in status["volumes"]}


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # no credentials of any kind
        assert resp.status == 200
        return resp.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_status_shows_every_volume_up_and_no_backlog_once_healed(cluster) -> None:
    healed = admin(cluster, "heal", "--wait", "--timeout", HEAL_TIMEOUT)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    code, status = status_json(cluster)
    assert code == 0 and status["healthy"] is True
    assert status["cluster"]["volumes_down"] == []
    assert status["cluster"]["heal_backlog"] == 0
    assert status["cluster"]["degraded_objects"] == 0
    for vid, volume in by_id(status).items():
        assert volume["state"] == "up", vid
        assert volume["disk"]["free"] > 0 and volume["disk"]["used"] > 0
        assert volume["heal_backlog"] == 0 and volume["objects"] is not None
    table = admin(cluster, "status")
    assert table.returncode == 0, table.stdout
    assert "status:           healthy (exit 0)" in table.stdout
    for vid in cluster.volume_ids:
        assert any(line.split()[:2] == [vid, "up"] for line in table.stdout.splitlines())


def test_dead_volume_shows_down_and_heal_wait_drains_its_backlog(cluster, s3, bucket) -> None:
    victim = cluster.volume_ids[-1]
    bodies = {f"admin/{n:02d}": os.urandom(5000 + 7 * n) for n in range(20)}
    cluster.kill_volume(victim)
    try:
        code, status = status_json(cluster)
        assert code == 1 and status["healthy"] is False
        assert status["cluster"]["volumes_down"] == [victim]
        down = by_id(status)[victim]
        assert down["state"] == "down" and down["reason"]
        assert down["disk"] is None and down["heal_backlog"] is None
        table = admin(cluster, "status")
        assert table.returncode == 1
        row = next(line for line in table.stdout.splitlines() if line.startswith(victim))
        assert row.split()[1] == "DOWN"
        assert "NOT healthy: 1 volume not answering" in table.stdout

        for key, body in bodies.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        code, status = status_json(cluster)
        assert code == 1
        # EC 4+2 on 6 volumes: every key's placement includes the victim
        assert status["cluster"]["heal_backlog"] >= len(bodies)
        assert status["cluster"]["degraded_objects"] >= len(bodies)
        assert status["cluster"]["degraded_objects_exact"] is False
        assert status["cluster"]["at_risk"] == 0  # one fragment missing of six

        now = admin(cluster, "heal", "--bucket", bucket)
        assert now.returncode == 1
        assert f"bucket {bucket}: heal backlog" in now.stdout
        assert f"{victim}: not answering" in now.stdout
    finally:
        cluster.restart_volume(victim)

    waited = admin(cluster, "heal", "--bucket", bucket, "--wait", "--timeout", HEAL_TIMEOUT)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert f"bucket {bucket}: heal backlog 0 on all 6 volumes" in waited.stdout
    everything = admin(cluster, "heal", "--wait", "--timeout", HEAL_TIMEOUT)
    assert everything.returncode == 0, everything.stdout + everything.stderr
    code, status = status_json(cluster)
    assert code == 0, status
    assert status["cluster"]["heal_backlog"] == 0 and status["cluster"]["volumes_down"] == []
    assert by_id(status)[victim]["state"] == "up"
    for key, body in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body


def test_heal_of_an_unknown_bucket_is_a_usage_error(cluster) -> None:
    done = admin(cluster, "heal", "--bucket", "no-such-bucket-here")
    assert done.returncode == 2
    assert "no bucket 'no-such-bucket-here'" in done.stderr


def test_gateway_metrics_count_puts_without_any_signature(cluster, s3, bucket) -> None:
    body = os.urandom(12345)
    s3.put_object(Bucket=bucket, Key="metrics/one", Body=body)
    values = samples(get_text(f"{cluster.endpoint}/-/metrics"))
    assert values[("shardgate_requests_total",
                   (("operation", "PutObject"), ("status", "200")))] > 0
    assert values[("shardgate_request_bytes_total", (("operation", "PutObject"),))] \
        >= len(body)
    assert values[("shardgate_request_duration_seconds_count",
                   (("operation", "PutObject"),))] > 0
    assert ("shardgate_healed_fragments_total", ()) in values
    assert ("shardgate_checksum_failures_total", ()) in values
    for name, labels in values:
        assert not {"bucket", "key"} & {label for label, _ in labels}, name


def test_volume_metrics_include_heal_queue_depth(cluster) -> None:
    vid = cluster.volume_ids[0]
    values = samples(get_text(f"{cluster.config.volume(vid).url}/metrics"))
    assert ("shardgate_heal_queue_depth", (("volume", vid),)) in values
    assert values[("shardgate_disk_free_bytes", (("volume", vid),))] > 0
    with pytest.raises(urllib.error.HTTPError) as refused:  # /status still wants a token
        get_text(f"{cluster.config.volume(vid).url}/status")
    assert refused.value.code == 401


def test_gateway_and_volumes_freeze_startup_objects_and_time_collections(cluster) -> None:
    vid = cluster.volume_ids[0]
    for url in (f"{cluster.endpoint}/-/metrics", f"{cluster.config.volume(vid).url}/metrics"):
        values = samples(get_text(url))
        assert values[("shardgate_gc_frozen_objects", ())] > 10_000, url
        for generation in "012":  # counted from startup (unit-tested: tests/unit)
            assert ("shardgate_gc_pause_seconds_count", (("generation", generation),)) \
                in values, url


def test_gateway_is_ready(cluster) -> None:
    with urllib.request.urlopen(f"{cluster.endpoint}/-/ready", timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["status"] == "ready"
