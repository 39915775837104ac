"""Whether reads without waiting (`preadv` with `RWF_NOWAIT`) work on a filesystem: tmpfs,
for one, refuses them, and the volume then reads every archive in a thread."""

from __future__ import annotations

import os
from pathlib import Path


def nowait_reads_work(directory: Path) -> bool:
    probe = directory / ".nowait-probe"
    probe.write_bytes(b"x" * 4096)
    fd = os.open(probe, os.O_RDONLY)
    try:
        return os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT) == 4096
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()
