"""Streams, not buffers: the gateway's peak memory does not grow with object size, and
what a burst of reads needed is returned after it.

Reads VmHWM of the gateway process from /proc after resetting it (clear_refs 5), so
each measurement is the peak of one transfer. A property, not a speed target.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shardgate.memory import RETURN_EVERY_SECONDS
from tests.e2e.conftest import USERS, own_cluster

pytestmark = pytest.mark.e2e
MIB = 1 << 20


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _peak_growth(pid: int, s3, bucket: str, path: Path) -> int:
    """Bytes the gateway's peak RSS rose above its resting RSS for one PUT + GET."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    resting = _status_kib(pid, "VmRSS")
    with open(path, "rb") as fh:
        s3.put_object(Bucket=bucket, Key=path.name, Body=fh)
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=bucket, Key=path.name)["Body"].iter_chunks(MIB):
        digest.update(chunk)
    with open(path, "rb") as fh:
        assert digest.hexdigest() == hashlib.file_digest(fh, "md5").hexdigest()
    return (_status_kib(pid, "VmHWM") - resting) * 1024


def _make(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        for _ in range(size // (8 * MIB)):
            fh.write(os.urandom(8 * MIB))
    return path


def test_gateway_memory_independent_of_object_size(cluster, s3, bucket, tmp_path):
    pid = cluster.gateway_pid()
    small = _make(tmp_path / "small.bin", 32 * MIB)
    large = _make(tmp_path / "large.bin", 512 * MIB)
    _peak_growth(pid, s3, bucket, small)  # warm up pools and caches
    growth_small = _peak_growth(pid, s3, bucket, small)
    growth_large = _peak_growth(pid, s3, bucket, large)
    print(f"gateway peak growth: 32 MiB object {growth_small / MIB:.1f} MiB, "
          f"512 MiB object {growth_large / MIB:.1f} MiB")
    assert growth_large - growth_small < 64 * MIB, (growth_small, growth_large)


def test_gateway_memory_bounded_on_a_1gib_copy(cluster, s3, bucket, tmp_path):
    """A server-side copy streams segment by segment: a 1 GiB CopyObject (and a 256 MiB
    UploadPartCopy) grows the gateway's peak no more than a small PUT + GET does."""
    pid = cluster.gateway_pid()
    small = _make(tmp_path / "small.bin", 32 * MIB)
    source = _make(tmp_path / "source.bin", 1024 * MIB)
    with open(source, "rb") as fh:
        expected = hashlib.file_digest(fh, "md5").hexdigest()
    with open(source, "rb") as fh:
        s3.put_object(Bucket=bucket, Key="source", Body=fh)
    source.unlink()
    _peak_growth(pid, s3, bucket, small)
    growth_small = _peak_growth(pid, s3, bucket, small)
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    resting = _status_kib(pid, "VmRSS")
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/source")
    assert copied["CopyObjectResult"]["ETag"] == f'"{expected}"'
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    s3.upload_part_copy(Bucket=bucket, Key="parts", UploadId=upload, PartNumber=1,
                        CopySource=f"{bucket}/source",
                        CopySourceRange=f"bytes=0-{256 * MIB - 1}")
    s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload)
    growth_copy = (_status_kib(pid, "VmHWM") - resting) * 1024
    print(f"gateway peak growth: 32 MiB PUT + GET {growth_small / MIB:.1f} MiB, "
          f"1 GiB copy + 256 MiB part copy {growth_copy / MIB:.1f} MiB")
    assert growth_copy - growth_small < 64 * MIB, (growth_small, growth_copy)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory):
    """A gateway of its own: a shared one's heap holds what earlier tests freed, which a
    burst reuses without growing."""
    with own_cluster(tmp_path_factory, "memory") as dev:
        yield dev


def test_gateway_returns_a_bursts_memory(fresh, tmp_path):
    """Memory a burst of concurrent reads needed goes back to the kernel once the burst is
    over, rather than staying with malloc for the life of the process."""
    pid = fresh.gateway_pid()
    s3 = fresh.client(*USERS["alice"])
    s3.create_bucket(Bucket="burst")
    with open(_make(tmp_path / "hot.bin", 64 * MIB), "rb") as fh:
        s3.put_object(Bucket="burst", Key="hot", Body=fh)
    ranges = [f"bytes={start}-{start + 8 * MIB - 1}" for start in range(0, 64 * MIB, 8 * MIB)]
    s3.get_object(Bucket="burst", Key="hot", Range=ranges[0])["Body"].read()
    time.sleep(RETURN_EVERY_SECONDS * 2)  # what the PUT left is returned first
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    resting = _status_kib(pid, "VmRSS") * 1024

    def read(which: str) -> int:
        return len(s3.get_object(Bucket="burst", Key="hot", Range=which)["Body"].read())

    with ThreadPoolExecutor(96) as pool:
        assert sum(pool.map(read, ranges * 16)) == 16 * 64 * MIB
    grown = _status_kib(pid, "VmHWM") * 1024 - resting
    assert grown > 48 * MIB, f"the burst grew the gateway by {grown / MIB:.0f} MiB only"
    deadline = time.monotonic() + RETURN_EVERY_SECONDS * 4
    while (held := _status_kib(pid, "VmRSS") * 1024 - resting) > grown // 4:
        assert time.monotonic() < deadline, (
            f"{held / MIB:.0f} MiB of a {grown / MIB:.0f} MiB burst still held")
        time.sleep(0.5)
