"""volume_server.fileio.owning_opened: a request cancelled while its thread job opens a
file does not leak the descriptor; an answered job hands it over open."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from volume_server.fileio import LockedFd, owning_opened


def test_a_file_opened_for_a_cancelled_request_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "archive"
    path.write_bytes(b"x" * 100)
    opened: list[LockedFd] = []

    def slow_open() -> tuple[list, LockedFd]:
        time.sleep(0.2)  # the request goes away meanwhile
        fd = LockedFd.open(path, os.O_RDONLY)
        opened.append(fd)
        return [], fd

    async def main() -> None:
        loop = asyncio.get_running_loop()
        request = asyncio.ensure_future(owning_opened(loop.run_in_executor(None, slow_open)))
        await asyncio.sleep(0.05)
        request.cancel()
        await asyncio.sleep(0.4)
        assert request.cancelled()
        answered = await owning_opened(loop.run_in_executor(None, slow_open))
        assert answered[1].pread(3, 0) == b"xxx"  # handed over open
        answered[1].close()

    asyncio.run(main())
    assert len(opened) == 2
    with pytest.raises(ValueError, match="closed"):
        opened[0].pread(1, 0)  # the cancelled request's file was closed
