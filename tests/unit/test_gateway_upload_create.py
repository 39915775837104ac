"""gateway.objects.uploads.create: an upload record that misses its write quorum is
aborted on every volume of its placement, including those that answered too late."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import S3Error
from gateway.objects import uploads
from gateway.objects.bucket_records import BucketRecord

pytestmark = pytest.mark.anyio

PLACEMENT = ("v1", "v2", "v3", "v4", "v5", "v6")


class Volumes:
    """Two volumes accept the record; the rest time out (and may have written it)."""

    def __init__(self) -> None:
        self.aborted: list[str] = []

    async def put_upload(self, volume_id: str, record: dict) -> dict:
        if volume_id in ("v1", "v2"):
            return {}
        raise TimeoutError(volume_id)

    async def abort_upload(self, volume_id: str, upload_id: str) -> None:
        if volume_id not in ("v1", "v2"):
            await asyncio.sleep(0.05)  # a volume that did not answer is slow again
        self.aborted.append(volume_id)


class Cluster:
    write_quorum = 5

    def __init__(self) -> None:
        self.volumes = Volumes()
        self.background: list[asyncio.Task] = []

    def in_background(self, job) -> None:
        self.background.append(asyncio.ensure_future(job))

    def placement(self, incarnation: str, key: str) -> tuple[str, ...]:
        return PLACEMENT


async def test_a_record_short_of_its_quorum_is_aborted_on_every_volume() -> None:
    cluster = Cluster()
    bucket = BucketRecord("b", "owner", "inc1", 0.0, False, 1)
    with pytest.raises(S3Error) as raised:
        await uploads.create(cluster, bucket, "key", "owner", {})  # type: ignore[arg-type]
    assert raised.value.code == "ServiceUnavailable"
    # The 503 waited only for the volumes that answered; the others are told after.
    assert sorted(cluster.volumes.aborted) == ["v1", "v2"]
    await asyncio.gather(*cluster.background)
    assert sorted(cluster.volumes.aborted) == list(PLACEMENT)
