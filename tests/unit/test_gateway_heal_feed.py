"""The healer's feed of a rebuilt archive to its upload: a failed upload ends the heal
with its error instead of leaving it waiting on a full queue forever."""

from __future__ import annotations

import asyncio

import pytest

from gateway.objects.fragment_rebuild import _feed
from gateway.objects.volume_errors import VolumeUnavailable


def test_a_full_queue_whose_upload_failed_ends_the_feed_with_its_error() -> None:
    async def main() -> None:
        queue: asyncio.Queue = asyncio.Queue(1)
        queue.put_nowait(b"waiting")

        async def upload() -> None:
            await asyncio.sleep(0.05)
            raise VolumeUnavailable("v3", "connection refused")

        task = asyncio.create_task(upload())
        await asyncio.wait_for(_feed(queue, b"next", task, "v3"), timeout=5)

    with pytest.raises(VolumeUnavailable, match="connection refused"):
        asyncio.run(main())


def test_a_live_upload_is_fed_in_order() -> None:
    async def main() -> list:
        queue: asyncio.Queue = asyncio.Queue(1)
        taken = []

        async def upload() -> None:
            while (item := await queue.get()) is not None:
                taken.append(item)

        task = asyncio.create_task(upload())
        for item in (b"a", b"b", b"c", None):
            await _feed(queue, item, task, "v1")
        await task
        return taken

    assert asyncio.run(main()) == [b"a", b"b", b"c"]
