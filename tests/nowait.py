"""What a filesystem allows, for tests that look at the page cache: reads without waiting
(`preadv` with `RWF_NOWAIT`; tmpfs, for one, refuses them, and the volume then reads
every archive in a thread) and O_DIRECT writes; and whether a file's first page is in the
page cache, asked without reading it in."""

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


def direct_writes_work(directory: Path) -> bool:
    try:
        fd = os.open(directory / ".direct-probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    (directory / ".direct-probe").unlink()
    return True


def first_page_cached(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT) == 4096
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
