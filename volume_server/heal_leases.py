"""Heal leases: which gateway process heals a queued version now, so two do not at once.

Every gateway process polls every heal queue. Before healing a version, its healer asks
the version's anchor volume (the first of its placement it takes to be up) for a short
lease; a lease held by another live healer is refused, and that healer's version is
skipped this round. A lease only saves work: heals are idempotent (each stages under
ids of its own and drops only the entries it saw), so a lease lost with a restarted
volume, or one that lapses while its holder stalls, costs at most one heal done twice.
That is why the table lives in memory, on the volume's own clock (holders send a
duration, never a time), and is not written to disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

Ref = tuple[str, str, str]  # incarnation, key, version id
SWEEP_AT = 10_000  # leases held before lapsed ones are swept on the next claim


class LeaseTable:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[Ref, tuple[str, float]] = {}

    def claim(self, holder: str, refs: Sequence[Ref], seconds: float) -> list[bool]:
        """Take or renew each ref's lease for `holder` for `seconds` (0: release it), unless
        another holder's lease is live; one answer per ref."""
        now = self._clock()
        if len(self._leases) >= SWEEP_AT:
            self._leases = {ref: lease for ref, lease in self._leases.items()
                            if lease[1] > now}
        granted = []
        for ref in refs:
            found = self._leases.get(ref)
            if found is not None and found[0] != holder and found[1] > now:
                granted.append(False)
                continue
            if seconds > 0:
                self._leases[ref] = (holder, now + seconds)
            elif found is not None and found[0] == holder:
                del self._leases[ref]
            granted.append(True)
        return granted

    def __len__(self) -> int:
        return len(self._leases)
