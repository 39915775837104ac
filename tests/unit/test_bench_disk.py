"""bench.disk's store probes and bench.cpu's split of CPU time: what the processes table
and the data-disk rows are computed from."""

from __future__ import annotations

import os
from pathlib import Path

from bench import disk
from bench.cpu import _process_seconds, process_times

MiB = 1 << 20


def test_each_store_probe_writes_new_files_and_keeps_them(tmp_path: Path) -> None:
    first = disk.store_cost(tmp_path, direct=False, stored=8 * MiB, files=4)
    second = disk.store_cost(tmp_path, direct=False, stored=8 * MiB, files=4)
    assert first > 0 and second > 0
    files = sorted(tmp_path.iterdir())
    assert len(files) == 8  # nothing freed, nothing overwritten: fresh pages each time
    assert {f.stat().st_size for f in files} == {3 * MiB}  # 8 MiB x 1.5 over 4 files


def test_the_direct_probe_writes_the_same_or_says_it_cannot(tmp_path: Path) -> None:
    cost = disk.store_cost(tmp_path, direct=True, stored=8 * MiB, files=4)
    files = list(tmp_path.iterdir())
    if cost is None:  # a filesystem that refuses O_DIRECT
        assert all(f.stat().st_size == 0 for f in files)
    else:
        assert cost > 0 and {f.stat().st_size for f in files} == {3 * MiB}


def test_kernel_time_is_part_of_the_total() -> None:
    user, system = process_times(os.getpid())
    for _ in range(2000):
        os.stat(".")
    assert user >= 0 and system >= 0
    assert abs(_process_seconds(os.getpid()) - sum(process_times(os.getpid()))) < 0.05
    assert process_times(2**22 + 12345) == (0.0, 0.0)  # gone: zeros
