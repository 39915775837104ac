"""gateway/objects/notices.py: durable notices queue per volume and go in batches."""

from __future__ import annotations

import asyncio

import pytest

from gateway.objects.notices import MAX_BATCH, DurableNotices
from gateway.objects.volume_errors import VolumeUnavailable

pytestmark = pytest.mark.anyio


class FakeVolumes:
    """Answers mark_durable when released; records every batch it was sent."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[dict]]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def mark_durable(self, volume_id: str, notices: list[dict]) -> list[bool]:
        self.batches.append((volume_id, notices))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise VolumeUnavailable(volume_id, "down")
        return [n["version_id"] != "missing" for n in notices]


def notice(n: int | str) -> dict:
    return {"incarnation": "i", "key": f"k{n}", "version_id": str(n), "heal": []}


async def test_notices_queued_behind_a_request_share_the_next_one():
    volumes = FakeVolumes()
    notices = DurableNotices(volumes)
    first = notices.send("v1", notice(1))
    await asyncio.sleep(0)
    later = [notices.send("v1", notice(n)) for n in (2, 3, "missing")]
    other = notices.send("v2", notice(9))
    await asyncio.sleep(0)
    volumes.release.set()
    assert await first is True
    assert [await f for f in later] == [True, True, False]
    assert await other is True
    assert [(vid, [n["version_id"] for n in batch]) for vid, batch in volumes.batches] == [
        ("v1", ["1"]), ("v2", ["9"]), ("v1", ["2", "3", "missing"])]


async def test_a_failed_request_fails_its_waiters_and_the_queue_goes_on():
    volumes = FakeVolumes()
    notices = DurableNotices(volumes)
    volumes.fail_next = True
    doomed = notices.send("v1", notice(1))
    await asyncio.sleep(0)
    after = notices.send("v1", notice(2))
    volumes.release.set()
    with pytest.raises(VolumeUnavailable):
        await doomed
    assert await after is True


async def test_a_notice_after_the_queue_drained_is_sent():
    volumes = FakeVolumes()
    volumes.release.set()
    notices = DurableNotices(volumes)
    assert await notices.send("v1", notice(1)) is True
    assert await notices.send("v1", notice(2)) is True
    assert len(volumes.batches) == 2


async def test_batches_are_capped():
    volumes = FakeVolumes()
    notices = DurableNotices(volumes)
    head = notices.send("v1", notice(0))
    await asyncio.sleep(0)
    rest = [notices.send("v1", notice(n)) for n in range(1, MAX_BATCH + 11)]
    volumes.release.set()
    await asyncio.gather(head, *rest)
    assert [len(b) for _, b in volumes.batches] == [1, MAX_BATCH, 10]
