"""The volume client's `latest` with a read along (a ranged GET's read-ahead): the rows
come first and the archive bytes follow as a stream; a volume that sends none (its newest
row is another version, or it reads nothing along) still answers its rows; a 4xx is a
refusal and a 5xx a volume down, as for every other request."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from tests.unit.stand_in_volume import client_of

pytestmark = pytest.mark.anyio
ROWS = {"versions": [{"version_id": "v2", "deleted": False, "durable": True,
                      "manifest": {}}], "clock": "", "rebuilding": False}
ARCHIVE = bytes(range(256)) * 64


async def latest(request: web.Request) -> web.Response:
    """A stand-in volume, behaving as the key asks."""
    rows = json.dumps(ROWS).encode()
    key = request.query["key"]
    if key == "plain":  # a volume that knows nothing of reading along
        return web.json_response(ROWS)
    if key == "refused":
        return web.json_response({"error": "bad"}, status=400)
    if key == "broken":
        return web.json_response({"error": "disk"}, status=500)
    first, last = int(request.query["first"]), int(request.query["last"])
    body = ARCHIVE[first:last + 1] if key == "along" else b""
    return web.Response(body=rows + body, headers={
        "x-rows-length": str(len(rows)), "x-archive-bytes": str(len(body))})


async def test_rows_then_the_bytes_read_along() -> None:
    app = web.Application()
    app.router.add_get("/objects/latest", latest)
    async with client_of(app) as client:
        rows, stream = await client.latest_and_read("v1", "i", "along", "v2", "a",
                                                    100, 4195)
        assert rows == ROWS["versions"] and stream is not None
        assert await stream.read_exactly(4096) == ARCHIVE[100:4196]
        stream.close()
        for key in ("none", "plain"):
            rows, stream = await client.latest_and_read("v1", "i", key, "v2", "a", 0, 9)
            assert rows == ROWS["versions"] and stream is None
        with pytest.raises(VolumeRejected):
            await client.latest_and_read("v1", "i", "refused", "v2", "a", 0, 9)
        with pytest.raises(VolumeUnavailable):
            await client.latest_and_read("v1", "i", "broken", "v2", "a", 0, 9)
        # The pooled connection is still good after all of that.
        rows, stream = await client.latest_and_read("v1", "i", "along", "v2", "a", 0, 9)
        assert stream is not None and await stream.read_exactly(10) == ARCHIVE[:10]
        stream.close()
