"""Process-start memory tuning shared by every role.

pyeclib's fragments for 1 MiB segments pass glibc's default mmap threshold (128 KiB), so
every encode would page-fault fresh memory; raising the threshold keeps those buffers
on the heap (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_TRIM_THRESHOLD = -1


def raise_mmap_threshold(threshold: int = 32 * 1024 * 1024) -> bool:
    """Return True when glibc accepted the setting (False on other C libraries)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, threshold)
        libc.mallopt(M_TRIM_THRESHOLD, threshold * 2)
    except (OSError, AttributeError):
        return False
    return bool(ok)
