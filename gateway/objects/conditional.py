"""Atomic conditional writes: claim the key, evaluate by the read rule, commit fenced.

A compare-and-set "on the write quorum" is not atomic by itself: two racers can each
win a disjoint half and leave two partial versions. So a conditional write (If-None-Match
"*", If-Match on PUT, copy, Complete and DELETE):

1. claims its key on a majority of the placement (one holder at a time; a racer that
   cannot get it within CLAIM_WAIT answers 409 ConditionalRequestConflict);
2. evaluates its condition by the read rule while it holds the claim;
3. commits with a fence: the id of the version it evaluated (and the versions the read
   rule proved were never acknowledged). A volume refuses the commit if it holds any
   other newer version, so a claim that expired under a stalled holder, or a plain
   write that slipped in, fails the conditional write instead of being overwritten;
4. a conditional write that fails its fence has its partial commits rolled back before
   it answers 409, so healing never rolls it forward.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gateway.errors import KeyBusy, S3Error
from gateway.objects.cluster import Cluster
from gateway.objects.reader import current_evidence
from shardgate.manifest import ObjectManifest

CLAIM_WAIT = 10.0  # how long a racer waits for the claim before answering 409
BACKOFF = 0.01


@dataclass(frozen=True)
class WriteConditions:
    """S3 conditional writes: If-None-Match and If-Match, each "*" or ETags."""

    if_none_match: tuple[str, ...] | None = None
    if_match: tuple[str, ...] | None = None

    @property
    def any(self) -> bool:
        return self.if_none_match is not None or self.if_match is not None


@dataclass(frozen=True)
class Fence:
    """What a fenced commit sends: the version evaluated ("" if none) and the versions
    proven never acknowledged."""

    expect_newest: str
    ignore: tuple[str, ...] = ()

    def payload(self) -> dict:
        return {"expect_newest": self.expect_newest, "ignore": list(self.ignore)}


def conflict() -> S3Error:
    return S3Error("ConditionalRequestConflict")


@asynccontextmanager
async def busy_is_conflict() -> AsyncIterator[None]:
    """A conditional write that meets another write still in flight answers 409."""
    try:
        yield
    except KeyBusy as exc:
        raise conflict() from exc


def evaluate(conditions: WriteConditions, current: ObjectManifest | None, key: str) -> None:
    """PreconditionFailed (412) or NoSuchKey (If-Match on a missing key) unless the
    conditions hold for `current` (a delete marker counts as no object)."""
    live = current if current is not None and not current.deleted else None
    none_match = conditions.if_none_match
    if none_match is not None and live is not None and (
            "*" in none_match or live.etag in none_match):
        raise S3Error("PreconditionFailed", extra={"Condition": "If-None-Match"})
    if conditions.if_match is not None:
        if live is None:
            raise S3Error("NoSuchKey", extra={"Key": key})
        if "*" not in conditions.if_match and live.etag not in conditions.if_match:
            raise S3Error("PreconditionFailed", extra={"Condition": "If-Match"})


async def fence_for(cluster: Cluster, incarnation: str, key: str,
                    conditions: WriteConditions) -> Fence:
    """With the key's claim held: the conditions against its current version, and
    the fence the commit carries."""
    async with busy_is_conflict():
        current, skipped = await current_evidence(cluster, incarnation, key)
    evaluate(conditions, current, key)
    return Fence(current.version_id if current is not None else "", tuple(skipped))


@asynccontextmanager
async def key_claim(cluster: Cluster, incarnation: str, key: str) -> AsyncIterator[None]:
    """Hold the key's claim on a majority of its placement for the block."""
    placement = cluster.placement(incarnation, key)
    needed = len(placement) // 2 + 1
    token = uuid.uuid4().hex
    # Longer than any commit; the fence covers a holder that stalls past it.
    payload = {"incarnation": incarnation, "key": key, "token": token,
               "ttl": cluster.config.gateway.conditional_claim_seconds}
    deadline = asyncio.get_running_loop().time() + CLAIM_WAIT
    attempt = 0
    while True:
        answers = await asyncio.gather(*(cluster.volumes.claim_key(vid, payload)
                                         for vid in placement), return_exceptions=True)
        held = [vid for vid, a in zip(placement, answers, strict=True) if a is True]
        if len(held) >= needed:
            break
        await _release(cluster, held, payload)
        if asyncio.get_running_loop().time() > deadline:
            raise conflict()
        attempt += 1
        await asyncio.sleep(BACKOFF * min(2 ** attempt, 32) * random.uniform(0.5, 1.5))
    try:
        yield
    finally:
        await _release(cluster, placement, payload)


async def _release(cluster: Cluster, volumes: list[str] | tuple[str, ...],
                   payload: dict) -> None:
    await asyncio.gather(*(cluster.volumes.release_key(vid, payload) for vid in volumes),
                         return_exceptions=True)


async def roll_back(cluster: Cluster, manifest: ObjectManifest, volumes: list[str]) -> None:
    """Drop a fenced write's pending rows where it did commit (before its 409)."""
    await asyncio.gather(*(cluster.volumes.roll_back(vid, manifest.incarnation,
                                                     manifest.key, manifest.version_id)
                           for vid in volumes), return_exceptions=True)
