"""A volume's background rounds: free retired archives, drop stale stages, flag rows
that never got their durable notice (docs/durability.md)."""

from __future__ import annotations

import asyncio
import logging

from shardgate.config import DurabilitySpec
from volume_server.store import Store

log = logging.getLogger("shardgate.volume.janitor")


async def run_once(store: Store, spec: DurabilitySpec) -> dict[str, int]:
    """One round; returns what it did (for logs and tests)."""
    done = {"retired_freed": await store.sweep_retired(),
            "stages_removed": await store.remove_stale_stages(spec.unmarked_seconds),
            "unmarked_queued": await store.queue_unmarked(spec.unmarked_seconds),
            "claims_expired": await store.sweep_claims()}
    if any(done.values()):
        log.info("janitor: %s", done)
    return done


async def run_forever(store: Store, spec: DurabilitySpec) -> None:
    while True:
        await asyncio.sleep(spec.janitor_interval_seconds)
        try:
            await run_once(store, spec)
        except Exception:  # a failed round is retried at the next one
            log.exception("janitor round failed")
