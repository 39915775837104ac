"""Durable notices, batched per volume: one request carries every notice that queued
while the previous one was on its way.

A notice only lets a volume drop the rows a version supersedes; the client's answer
never waits for it, and a lost one is made up by the volume itself (docs/durability.md).
So a notice may wait for the request ahead of it, and under load many small writes share
one request and one index transaction on each volume instead of one each.
"""

from __future__ import annotations

from gateway.objects.volume_batches import VolumeBatches
from gateway.objects.volume_client import VolumeClient

MAX_BATCH = 256  # notices per request (the volume takes up to 1000)


class DurableNotices(VolumeBatches[dict, bool]):
    """Per-volume queues of durable notices; each future says whether the volume had
    the version (or holds the request's error)."""

    def __init__(self, volumes: VolumeClient) -> None:
        super().__init__(volumes.mark_durable, MAX_BATCH)
