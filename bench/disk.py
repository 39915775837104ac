"""What the data disk costs, printed beside the rows it bounds: the fsync rate (small
durable PUTs), and the CPU it takes to store a byte of a large PUT's fragments, through
the page cache (as the volumes write) and with O_DIRECT (bypassing it)."""

from __future__ import annotations

import itertools
import mmap
import os
import time
from pathlib import Path

BLOCK = 4096
MiB = 1 << 20
_probes = itertools.count()


def fsyncs_per_second(directory: Path, seconds: float = 2.0) -> float:
    """Write 4 KiB and fsync, over and over, for `seconds` in `directory`."""
    path = directory / "fsync-probe.bin"
    block = os.urandom(BLOCK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            os.write(fd, block)
            os.fsync(fd)
            count += 1
        return count / elapsed
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def store_cost(directory: Path, direct: bool, stored: int = 256 * MiB, spread: float = 1.5,
               files: int = 6) -> float | None:
    """Core-seconds of this thread per GB stored: `spread` times `stored` bytes written
    into `files` new files (as six volumes each write a fragment archive; EC 4+2 writes
    1.5 bytes per byte) in 1 MiB writes, each file fsynced; None if the filesystem
    refuses O_DIRECT. The files stay until the run's work directory goes, so each probe
    fills pages the kernel had not just freed, as volumes that keep their data do."""
    chunk = mmap.mmap(-1, MiB)  # page-aligned, as O_DIRECT needs
    chunk.write(os.urandom(MiB))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_DIRECT if direct else 0)
    start = time.thread_time()
    try:
        for _ in range(files):
            fd = os.open(directory / f"store-probe-{next(_probes)}.bin", flags, 0o600)
            try:
                for _ in range(int(stored * spread) // files // MiB):
                    os.write(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError:
        if direct:
            return None
        raise
    finally:
        chunk.close()
    return (time.thread_time() - start) / (stored / 1e9)
