"""Time-ordered, unique version ids: UUIDv7 layout driven by a hybrid logical clock.

The 48-bit millisecond field comes from max(wall clock, highest time seen), and the
12-bit `rand_a` field counts within one millisecond, so ids from one gateway strictly
increase even if its clock steps back, and a gateway that has seen a newer id (from a
manifest it read) never issues an older one. The 32-character hex form sorts like the id.
"""

from __future__ import annotations

import os
import threading
import time

_MAX_COUNTER = 0xFFF


class HybridClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = 0
        self._counter = 0

    def observe(self, version_id: str) -> None:
        """Move the clock past a version id seen from elsewhere."""
        try:
            value = int(version_id, 16)
        except ValueError:
            return
        ms, counter = value >> 80, (value >> 64) & _MAX_COUNTER
        with self._lock:
            if (ms, counter) > (self._ms, self._counter):
                self._ms, self._counter = ms, counter

    def next_id(self) -> str:
        with self._lock:
            now = time.time_ns() // 1_000_000
            if now > self._ms:
                self._ms, self._counter = now, 0
            elif self._counter < _MAX_COUNTER:
                self._counter += 1
            else:
                self._ms, self._counter = self._ms + 1, 0
            ms, counter = self._ms, self._counter
        rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand
        return f"{value:032x}"


_CLOCK = HybridClock()


def new_version_id() -> str:
    return _CLOCK.next_id()


def observe_version_id(version_id: str) -> None:
    _CLOCK.observe(version_id)


def version_time_ms(version_id: str) -> int:
    """Milliseconds since the epoch encoded in a version id."""
    return int(version_id, 16) >> 80
