"""What a filesystem allows, for tests that look at the page cache: reads without waiting
(`preadv` with `RWF_NOWAIT`; tmpfs, for one, refuses them, and the volume then reads
every archive in a thread) and O_DIRECT writes; and whether a file's first page is in the
page cache, asked without reading it in."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

PAGE = mmap.PAGESIZE


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
    """Asked of mincore(2) over a mapping of the file that is never touched: a read, even
    one that must not wait, may start readahead and fill the cache it is asking about."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), PAGE, access=mmap.ACCESS_COPY) as view:
        start = ctypes.c_char.from_buffer(view)
        try:
            pages = (ctypes.c_ubyte * 1)()
            if libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(PAGE),
                            pages) != 0:
                raise OSError(ctypes.get_errno(), "mincore failed")
            return bool(pages[0] & 1)
        finally:
            del start
