"""Heal leases, the healer's side: a version is healed by one gateway process at a time.

Every gateway process polls every heal queue, so without a word between them two would
heal the same version at once and do its reads and writes twice. Before healing a
version the healer takes a lease on it from its anchor volume (the first of the key's
placement not suspected down; volume_server/heal_leases.py), renews it while the heal
runs, keeps it a little past a heal that ended (a healer that listed the entries just
before they were dropped then finds it taken) and releases it after one that did not.

A lease only saves work; it never decides whether a heal is right. A volume that cannot
answer grants nothing and refuses nothing: the heal goes ahead as it did before leases.
For the same reason a heal renews its lease for at most `max_hold` seconds: one that
hangs past that lets another healer try the version instead of keeping it for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.objects.heal_refs import Heal, VersionRef
from gateway.objects.volume_errors import VolumeRejected, VolumeUnavailable
from shardgate.faults import kill_point

if TYPE_CHECKING:
    from gateway.objects.cluster import Cluster

# An hour: far past a rebuild of the largest object at the slowest rate seen here.
MAX_HOLD_SECONDS = 3600.0


class LeasedElsewhere(Exception):
    """Another healer holds the version's heal lease."""


@dataclass
class Lease:
    granted: bool
    healed: bool = False  # set by the holder once the heal ended; kept `linger` then


class HealLeases:
    def __init__(self, cluster: Cluster, seconds: float, linger: float,
                 max_hold: float = MAX_HOLD_SECONDS) -> None:
        self.cluster = cluster
        self.seconds = seconds  # 0: no leases (every healer heals what it finds)
        self.linger = linger
        self.max_hold = max_hold
        self.holder = uuid.uuid4().hex

    @property
    def retry_seconds(self) -> float:
        """How long a healer that must heal a version another holds waits to ask again:
        past a renewal, or past the linger of a heal that ended."""
        return max(self.linger, self.seconds / 3, 0.1)

    def anchor(self, ref: VersionRef) -> str:
        placement = self.cluster.placement(ref.incarnation, ref.key)
        return next((vid for vid in placement if not self.cluster.suspect(vid)),
                    placement[0])

    async def _ask(self, anchor: str, ref: VersionRef, seconds: float) -> bool:
        try:
            granted = await self.cluster.volumes.heal_leases(
                anchor, self.holder, seconds, [(ref.incarnation, ref.key, ref.version_id)])
        except (VolumeUnavailable, VolumeRejected):
            return True  # no lease to be had: heal as without leases
        return granted[0]

    @contextlib.asynccontextmanager
    async def lease(self, ref: VersionRef) -> AsyncIterator[Lease]:
        """A lease on `ref` (`granted` False: another healer holds it), renewed while the
        body runs (up to `max_hold` seconds); kept `linger` seconds if the body set
        `healed`, else released."""
        if self.seconds <= 0:
            yield Lease(True)
            return
        anchor = self.anchor(ref)
        lease = Lease(await self._ask(anchor, ref, self.seconds))
        if not lease.granted:
            yield lease
            return

        async def renew() -> None:
            loop = asyncio.get_running_loop()
            last = loop.time() + self.max_hold - self.seconds  # its term ends by max_hold
            while loop.time() + self.seconds / 3 <= last:
                await asyncio.sleep(self.seconds / 3)
                await self._ask(anchor, ref, self.seconds)

        renewing = asyncio.create_task(renew())
        try:
            yield lease
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewing
            with contextlib.suppress(Exception):  # unanswered: it lapses on its own
                await self._ask(anchor, ref, self.linger if lease.healed else 0)

    def leased(self, heal: Heal) -> Heal:
        """`heal`, taken under each version's lease: LeasedElsewhere if another holds it
        (for the caller to judge: skip it, or wait and heal it again)."""
        async def under_lease(ref: VersionRef) -> None:
            async with self.lease(ref) as lease:
                if not lease.granted:
                    raise LeasedElsewhere(ref)
                kill_point("gateway.after_heal_lease")
                await heal(ref)
                lease.healed = True
        return under_lease
