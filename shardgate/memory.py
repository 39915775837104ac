"""Process memory: glibc malloc settings at start, and returning freed memory after a burst.

pyeclib's fragments for 1 MiB segments pass glibc's default mmap threshold (128 KiB), so
every encode would page-fault fresh memory; raising the threshold keeps those buffers on
the heap (docs/performance.md). The price is that a burst (64 ranged GETs in flight) grows
the heap by hundreds of MiB that malloc keeps after the burst: long-lived small blocks pin
the heap's top, so the trim on free never happens, and each thread's arena keeps its own
top. `keep_returning_free_memory` hands free pages back when the resident free memory exceeds
what is in use by a slack (docs/architecture.md, section "Memory").
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import os
from dataclasses import dataclass

log = logging.getLogger("shardgate.memory")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")

MMAP_THRESHOLD = 32 * MIB
# One arena for every thread: the worker threads (encode, decode, digests, disk I/O) each
# got an arena of their own, and an arena other than the main one never returns its top
# (malloc_trim leaves it alone), so each kept its peak: about 30 MiB apiece, seven of them.
ARENAS = 1
RETURN_EVERY_SECONDS = 2.0
RETURN_SLACK_BYTES = 64 * MIB


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (None elsewhere: every call here is a no-op)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallinfo2.restype = _MallInfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not glibc, or older than 2.33 (no mallinfo2)
        return None
    return libc


def tune_allocator(threshold: int = MMAP_THRESHOLD, arenas: int = ARENAS) -> bool:
    """Set the mmap threshold and the arena count; True when glibc accepted them. Call at
    process start, before worker threads exist."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, threshold)
    libc.mallopt(M_TRIM_THRESHOLD, threshold * 2)
    libc.mallopt(M_ARENA_MAX, arenas)
    return bool(ok)


@dataclass(frozen=True)
class HeapUse:
    """What malloc holds, in bytes: blocks in use, and free blocks it keeps for reuse
    (pages already handed back included: malloc counts them free until reused)."""

    in_use: int
    free: int


def heap_use() -> HeapUse | None:
    """malloc's own accounting over every arena (None off glibc)."""
    libc = _glibc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return HeapUse(in_use=info.uordblks, free=info.fordblks)


def resident_bytes() -> int:
    """This process's resident set (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def worth_returning(resident_free: int, in_use: int, slack: int = RETURN_SLACK_BYTES) -> bool:
    """Resident free memory beyond what is in use, by more than the slack: a burst has
    passed. Under steady load the two stay comparable and nothing is returned, so reused
    buffers do not page fault again."""
    return resident_free > slack + in_use


class FreeMemoryReturner:
    """Hands free pages back after a burst. malloc's free count keeps pages already
    handed back, so what is free *and resident* is estimated from the resident set: all
    of it but the blocks in use and the process's other memory (code, the interpreter's
    small-object pools), taken as the least seen beside malloc's in-use count."""

    def __init__(self, slack: int = RETURN_SLACK_BYTES) -> None:
        self.slack = slack
        self.other: int | None = None

    def tick(self) -> HeapUse | None:
        """Return free pages when `worth_returning`; the use before, when it did. Walks
        every free block (about 40 ms for 500 MiB free): run it off the event loop."""
        use = heap_use()
        if use is None:
            return None
        other = resident_bytes() - use.in_use
        self.other = other if self.other is None else min(self.other, other)
        if not worth_returning(other - self.other, use.in_use, self.slack):
            return None
        libc = _glibc()
        assert libc is not None
        libc.malloc_trim(0)  # the next tick's reading lowers `other` to what is left
        return use


async def keep_returning_free_memory(every: float = RETURN_EVERY_SECONDS) -> None:
    """Run for the life of a process (each gateway worker and volume runs its own)."""
    if _glibc() is None:
        return
    returner = FreeMemoryReturner()
    while True:
        await asyncio.sleep(every)
        before = await asyncio.to_thread(returner.tick)
        if before is not None:
            log.debug("returned free memory: %d MiB free beside %d MiB in use",
                      before.free // MIB, before.in_use // MIB)
