"""Python's garbage collector in a long-running server: startup objects kept out of full
collections, and every collection's pause timed.

A full (generation 2) collection scans every tracked object. In a gateway most of them
are made once at startup (modules, functions, classes, the app and its config: some
50,000) and live for good, yet each full collection walked them again: 50 to 80 ms of CPU
every few seconds under load, a stall every request in flight waits out
(docs/performance.md, section "Garbage-collector pauses"). Freezing what is alive once
startup is done moves those objects to the permanent generation, which no collection
scans; what requests create is still collected.

Young collections are also made rarer. A collection starts when 700 more container objects
were made than freed; a request in flight holds dozens (coroutines, futures, frames,
headers), so under load a gateway ran a young collection every few milliseconds, each
rescanning every request still in flight: 1.4 s of a KV run's 40 were spent collecting.
Nearly all of those objects are freed by reference counting, not by the collector; what
the higher threshold delays is the freeing of reference cycles (an exception's traceback,
say), which now wait for 10,000 net new objects, and the older generations, which run
every 10 young collections, about 14 times less often. Startup objects that later become
garbage are never freed: a bounded, one-time amount.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from typing import Any

from prometheus_client import Gauge, Histogram

YOUNG_THRESHOLD = 10_000  # Python's default is 700; the older generations keep theirs

PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, float("inf"))

PAUSES = Histogram("shardgate_gc_pause_seconds",
                   "Time each garbage collection held the interpreter, by generation.",
                   ["generation"], buckets=PAUSE_BUCKETS)
FROZEN = Gauge("shardgate_gc_frozen_objects",
               "Objects alive at startup, moved out of every collection's scan.",
               multiprocess_mode="max")


def freeze_startup_objects() -> int:
    """Collect once (cycles startup left behind), then freeze everything still alive.
    Call when startup is done; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    FROZEN.set(frozen)
    return frozen


# Pauses measured but not yet in PAUSES. A collection can start inside any allocation,
# including one made while prometheus_client holds a metric's lock (its locks are not
# reentrant), so the callback only appends here and `record_pauses` observes later.
_pending: deque[tuple[str, float]] = deque(maxlen=10_000)


class _PauseTimer:
    """A `gc.callbacks` entry: the time from a collection's start to its stop."""

    def __init__(self) -> None:
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            _pending.append((str(info["generation"]), time.perf_counter() - self.started))


def record_pauses() -> None:
    """Move the pauses measured since the last call into PAUSES. Called where no metric
    lock is held: after each request, and before each scrape."""
    for _ in range(len(_pending)):  # not the pauses these observations cause
        try:
            generation, seconds = _pending.popleft()
        except IndexError:  # another thread took the last one
            return
        PAUSES.labels(generation).observe(seconds)


def time_collections() -> None:
    """Measure every collection's pause for PAUSES (once per process; later calls do
    nothing)."""
    if not any(isinstance(callback, _PauseTimer) for callback in gc.callbacks):
        for generation in range(3):  # every series from the start, at zero until used
            PAUSES.labels(str(generation))
        gc.callbacks.append(_PauseTimer())


def collect_young_less_often(threshold: int = YOUNG_THRESHOLD) -> None:
    """Raise the first generation's threshold, leaving the older generations' alone."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(threshold, middle, old)


def settle_after_startup() -> int:
    """What a server calls once its startup is done: freeze, collect the young less often,
    then time what follows."""
    frozen = freeze_startup_objects()
    collect_young_less_often()
    time_collections()
    return frozen
