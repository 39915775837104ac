"""Garbage-collector settings: startup objects frozen out of every scan, pauses timed."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    """In a fresh interpreter: freezing would otherwise freeze pytest's own objects."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.strip()


def test_objects_alive_at_startup_leave_every_generation() -> None:
    out = _run("""
        import gc
        from shardgate.collector import freeze_startup_objects, FROZEN
        startup = [[i] for i in range(20_000)]
        cycle = [];  cycle.append(cycle); del cycle  # garbage startup left behind
        frozen = freeze_startup_objects()
        scanned = {id(o) for o in gc.get_objects()}
        later = [[i] for i in range(10)]
        print(frozen >= 20_000, any(id(o) in scanned for o in startup),
              all(gc.is_tracked(o) for o in later), FROZEN._value.get() == frozen,
              gc.collect() == 0)
    """)
    assert out == "True False True True True"


def test_each_collection_pause_is_recorded_by_generation_once() -> None:
    out = _run("""
        import gc
        from shardgate.collector import (PAUSES, record_pauses, settle_after_startup,
                                         time_collections)
        settle_after_startup()
        time_collections()
        def count(generation):
            return PAUSES.labels(generation)._sum.get(), [
                s.value for m in PAUSES.collect() for s in m.samples
                if s.name.endswith("_count") and s.labels["generation"] == generation][0]
        gc.collect(0); gc.collect(0); gc.collect(2)
        record_pauses()
        print(count("0")[1], count("2")[1], count("2")[0] > 0, gc.get_threshold())
    """)
    assert out == "2.0 1.0 True (10000, 10, 10)"


def test_a_collection_while_a_metric_lock_is_held_does_not_wait_for_it() -> None:
    """prometheus_client's locks are not reentrant, and a collection can start inside any
    allocation, such as one made while the histogram's own lock is held (a scrape copying
    its children): the pause must be kept for later, not observed there."""
    out = _run("""
        import gc
        from shardgate.collector import PAUSES, record_pauses, time_collections
        time_collections()
        with PAUSES._lock:
            gc.collect(0)
        record_pauses()
        print([s.value for m in PAUSES.collect() for s in m.samples
               if s.name.endswith("_count") and s.labels["generation"] == "0"])
    """)
    assert out == "[1.0]"


def test_pauses_reach_the_scrape() -> None:
    out = _run("""
        import gc
        from shardgate.collector import time_collections
        from shardgate.metrics import exposition
        time_collections()
        gc.collect(1)
        print([line for line in exposition().decode().splitlines()
               if line.startswith("shardgate_gc_pause_seconds_count")])
    """)
    assert "'shardgate_gc_pause_seconds_count{generation=\"1\"} 1.0'" in out
    assert "'shardgate_gc_pause_seconds_count{generation=\"0\"} 0.0'" in out


def test_a_collection_while_a_new_child_is_made_in_multiprocess_mode_does_not_hang(
        tmp_path) -> None:
    """With several gateway workers every metric shares one lock, held while a new label
    child is built: a collection started there must not wait for it."""
    out = _run(f"""
        import os
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        import gc
        from prometheus_client import Counter
        from shardgate.collector import record_pauses, time_collections
        time_collections()
        gc.set_threshold(1)
        counter = Counter("made_under_the_lock_total", "", ["n"])
        for n in range(50):
            counter.labels(str(n)).inc()
        record_pauses()
        print("done")
    """)
    assert out == "done"
