"""Small helpers shared by end-to-end tests: raw signed requests, volume look-ups, and
what the volumes hold for a key."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway.objects.cluster import Cluster
from shardgate.admin import bucket_incarnation
from shardgate.manifest import ObjectManifest
from tests.e2e.cluster import REGION, DevCluster


class _DeclaredPayloadAuth(S3SigV4Auth):
    """botocore hashes payloads itself over plain HTTP; raw-socket tests declare theirs."""

    def __init__(self, credentials: Credentials, payload: str) -> None:
        super().__init__(credentials, "s3", REGION)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def sign(method: str, url: str, access: str, secret: str, headers: dict[str, str],
         payload: str = "UNSIGNED-PAYLOAD") -> dict[str, str]:
    """SigV4-sign a request by botocore's signer with a declared payload; includes Host."""
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    _DeclaredPayloadAuth(Credentials(access, secret), payload).add_auth(request)
    return {"Host": urlsplit(url).netloc, **dict(request.headers.items())}


def volume_json(cluster: DevCluster, volume_id: str, path: str) -> dict:
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}{path}")
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id)}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def volume_put(cluster: DevCluster, volume_id: str, path: str, body: dict,
               method: str = "PUT") -> dict:
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}{path}",
                                     data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id, 'write')}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def marker_from_the_future(cluster: DevCluster, s3, bucket: str, key: str,  # noqa: ANN001
                           ahead_on: int) -> str:
    """In a versioning-enabled bucket: a durable delete marker of `key` an hour ahead of
    now (as from a gateway whose clock runs ahead), committed straight into the first
    `ahead_on` volumes of its placement. Returns its version id."""
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key=key, Body=b"first")
    s3.delete_object(Bucket=bucket, Key=key)
    inc = incarnation(cluster, bucket)
    holder = placement(cluster, bucket, key)[0]
    marker = volume_json(cluster, holder, f"/objects/latest?incarnation={quote(inc)}"
                                          f"&key={quote(key)}")["versions"][0]
    assert marker["deleted"]
    future = f"{int(marker['version_id'], 16) + ((3600 * 1000) << 80):032x}"
    manifest = {**marker["manifest"], "version_id": future}
    for volume_id in placement(cluster, bucket, key)[:ahead_on]:
        volume_put(cluster, volume_id, "/objects/commit", {
            "incarnation": inc, "key": key, "version_id": future, "deleted": True,
            "manifest": manifest,
            "summary": {"size": 0, "etag": "", "owner": "alice-id", "last_modified": 0.0},
            "stage_id": None, "archive_id": None, "inline": False, "archives": [],
            "heal": [], "durable": True}, method="POST")
    return future


def incarnation(cluster: DevCluster, bucket: str) -> str:
    """The bucket's incarnation, as the map store holds it."""
    return asyncio.run(bucket_incarnation(cluster.config, bucket))


def placement(cluster: DevCluster, bucket: str, key: str) -> tuple[str, ...]:
    """The volumes holding fragment indexes 0..k+m-1 of a key, as every gateway computes."""
    return Cluster.build(cluster.config).placement(incarnation(cluster, bucket), key)


def status_of(call) -> int:  # noqa: ANN001 - any boto3 call wrapped in a lambda
    """The HTTP status a boto3 call ended with (200 when it raised nothing)."""
    try:
        call()
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return 200


def volume_requests(cluster: DevCluster, operation: str, status: str | None = "200",
                    volume_ids: list[str] | None = None) -> float:
    """How many `operation` requests the volumes (all, or `volume_ids`) answered with
    `status` (None: any), by their own counters (`GET /metrics`)."""
    labels = {"operation": operation} | ({"status": status} if status else {})
    return volume_counter(cluster, "shardgate_requests_total", labels, volume_ids)


def volume_counter(cluster: DevCluster, sample: str, labels: dict[str, str],
                   volume_ids: list[str] | None = None) -> float:
    """A counter summed over the volumes' `/metrics` (all, or `volume_ids`), over the
    samples with `labels`."""
    return sum(counter_at(cluster.config.volume(volume_id).url, sample, labels)
               for volume_id in volume_ids or cluster.volume_ids)


def counter_at(url: str, sample: str, labels: dict[str, str]) -> float:
    """A counter of the process serving `url` (its `/metrics`), over the samples with
    `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        return sum(found.value
                   for family in text_string_to_metric_families(resp.read().decode())
                   for found in family.samples
                   if found.name == sample
                   and all(found.labels.get(k) == v for k, v in labels.items()))


# --- what the volumes hold ------------------------------------------------------------


def latest_rows(cluster, volume_id: str, bucket: str, key: str) -> list[dict]:
    """The rows a volume lists for the read rule: newest down to its newest durable one."""
    inc = incarnation(cluster, bucket)
    return volume_json(cluster, volume_id,
                       f"/objects/latest?incarnation={quote(inc)}&key={quote(key)}")["versions"]


def current_manifest(cluster, bucket: str, key: str) -> ObjectManifest:
    """The newest manifest any volume of the placement holds for the key."""
    rows = [row for vid in placement(cluster, bucket, key)
            for row in latest_rows(cluster, vid, bucket, key)]
    return ObjectManifest.from_dict(max(rows, key=lambda r: r["version_id"])["manifest"])


def archive_path(cluster, volume_id: str, archive_id: str) -> Path:
    data_dir = Path(cluster.config.volume(volume_id).data_dir)
    return data_dir / "fragments" / archive_id[:2] / archive_id[2:4] / archive_id


def wait_until_only(cluster, bucket: str, key: str, version_id: str,
                    timeout: float = 15) -> None:
    """Wait until every volume of the placement lists just `version_id`, durable: the
    durable notice arrived and the older rows were superseded."""
    deadline = time.monotonic() + timeout
    volumes = placement(cluster, bucket, key)
    while True:
        listed = {vid: [(r["version_id"], r["durable"])
                        for r in latest_rows(cluster, vid, bucket, key)] for vid in volumes}
        if all(rows == [(version_id, True)] for rows in listed.values()):
            return
        assert time.monotonic() < deadline, f"older rows of {key} not superseded: {listed}"
        time.sleep(0.1)
