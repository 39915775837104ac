"""The data disk's fsync rate: what bounds small durable PUTs, printed beside them."""

from __future__ import annotations

import os
import time
from pathlib import Path

BLOCK = 4096


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
