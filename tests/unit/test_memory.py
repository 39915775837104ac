"""shardgate.memory: when freed memory is handed back, and that handing back really shrinks
a process that holds freed memory (a fresh interpreter, so this one's heap is not measured)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from shardgate.memory import MIB, heap_use, worth_returning

BURST = textwrap.dedent(r"""
    import sys
    from shardgate.memory import FreeMemoryReturner, heap_use, tune_allocator

    def rss_mib():
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmRSS:"))
        return int(line.split()[1]) // 1024

    assert tune_allocator()
    returner = FreeMemoryReturner()
    assert returner.tick() is None  # at rest: nothing to return
    # A burst: 1 MiB buffers, each followed by a small block that outlives the burst and
    # pins the heap (what connections, tasks and caches allocate meanwhile).
    buffers, pins = [], []
    for _ in range(300):
        buffers.append(b"\x01" * (1 << 20))  # written: resident
        pins.append(b"\x01" * (64 << 10))  # larger than any hole: it lands on top
    assert returner.tick() is None  # all in use: nothing to return
    buffers.clear()
    held = rss_mib()
    if sys.argv[1] == "return":
        assert returner.tick() is not None
        assert returner.tick() is None  # returned pages still count as free: not again
    else:
        use = heap_use()
        assert use.free > 250 << 20 and use.in_use < 64 << 20
    print(held, rss_mib())
""")


@pytest.mark.parametrize(("resident_free", "in_use", "worth"), [
    (500 * MIB, 50 * MIB, True),   # after a burst
    (300 * MIB, 300 * MIB, False),  # under load: freed buffers are about to be reused
    (150 * MIB, 100 * MIB, False),
    (200 * MIB, 100 * MIB, True),
    (60 * MIB, 0, False),           # little to gain
    (0, 0, False),
])
def test_worth_returning_only_when_free_memory_dwarfs_what_is_in_use(
        resident_free: int, in_use: int, worth: bool) -> None:
    assert worth_returning(resident_free, in_use) is worth


def _burst(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", BURST, mode], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    return int(out[0]), int(out[1])


@pytest.mark.skipif(heap_use() is None, reason="glibc's malloc only")
def test_freed_memory_stays_with_malloc_until_returned() -> None:
    held, later = _burst("keep")
    assert held > 250 and later > 250, (held, later)
    held, returned = _burst("return")
    assert held > 250 and returned < held - 200, (held, returned)
