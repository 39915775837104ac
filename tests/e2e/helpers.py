"""Small helpers shared by end-to-end tests: raw signed requests and volume look-ups."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.cluster import Cluster
from tests.e2e.cluster import REGION, DevCluster


class _UnsignedPayloadAuth(S3SigV4Auth):
    """botocore signs payloads over plain HTTP; raw-socket tests stream unsigned ones."""

    def _should_sha256_sign_payload(self, request: AWSRequest) -> bool:
        return False


def sign(method: str, url: str, access: str, secret: str,
         headers: dict[str, str]) -> dict[str, str]:
    """SigV4-sign a request (UNSIGNED-PAYLOAD) by botocore's signer; includes Host."""
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    _UnsignedPayloadAuth(Credentials(access, secret), "s3", REGION).add_auth(request)
    return {"Host": urlsplit(url).netloc, **dict(request.headers.items())}


def volume_json(cluster: DevCluster, volume_id: str, path: str) -> dict:
    request = urllib.request.Request(f"{cluster.config.volume(volume_id).url}{path}")
    request.add_header("Authorization", f"Bearer {cluster.token(volume_id)}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def incarnation(cluster: DevCluster, bucket: str) -> str:
    return volume_json(cluster, cluster.volume_ids[0], f"/buckets/{bucket}")["incarnation"]


def placement(cluster: DevCluster, bucket: str, key: str) -> tuple[str, ...]:
    """The volumes holding fragment indexes 0..k+m-1 of a key, as every gateway computes."""
    return Cluster.build(cluster.config).placement(incarnation(cluster, bucket), key)
