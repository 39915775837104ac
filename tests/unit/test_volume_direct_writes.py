"""volume_server.direct_writes through staging.write_stage: staged bytes land exactly
whatever the chunking, whole blocks bypass the page cache (they are not cached after the
stage), the tail goes through it, a filesystem that refuses O_DIRECT at the open or at
the first write is written through the cache instead, and blocks are reused; the stage
route's `cache=0`, and which fragments the gateway asks it for under each policy."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shardgate.config import BULK_WRITE_BYTES, ClusterConfig, ConfigError, parse_config
from tests.nowait import direct_writes_work, first_page_cached, nowait_reads_work
from tests.unit.test_core_config import raw_config
from tests.unit.volume_support import running_app
from volume_server import direct_writes, fileio, staging
from volume_server.direct_writes import BLOCK, BlockPool
from volume_server.layout import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    lay = Layout(tmp_path / "v", "v1")
    lay.prepare()
    return lay


@pytest.fixture(autouse=True)
def direct_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_writes, "_direct", hasattr(os, "O_DIRECT"))


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def stage(layout: Layout, data: bytes, chunk: int, direct: bool, stage_id: str = "s1",
          read: bool = True) -> bytes:
    """Stage `data` in chunks; the staged file's bytes (read, so cached, unless not `read`)."""
    size = asyncio.run(staging.write_stage(layout, stage_id, chunks(data, chunk), len(data),
                                           direct))
    assert size == len(data)
    return layout.staged_path(stage_id).read_bytes() if read else b""


@pytest.mark.parametrize("length", [0, 1, 4095, BLOCK, BLOCK + 1, 3 * BLOCK + 777])
@pytest.mark.parametrize("chunk", [1000, 65536, 300_001])
def test_the_staged_bytes_are_exactly_the_body(layout: Layout, length: int, chunk: int) -> None:
    data = os.urandom(length)
    assert stage(layout, data, chunk, direct=True) == data


def test_whole_blocks_skip_the_page_cache_and_the_tail_does_not(layout: Layout) -> None:
    if not (direct_writes_work(layout.root) and nowait_reads_work(layout.root)):
        pytest.skip("this filesystem refuses O_DIRECT or reads that do not wait")
    data = os.urandom(2 * BLOCK + 5000)
    stage(layout, data, 65536, direct=True, read=False)
    assert not first_page_cached(layout.staged_path("s1"))  # written around the cache
    fd = os.open(layout.staged_path("s1"), os.O_RDONLY)
    try:
        tail = bytearray(5000)
        assert os.preadv(fd, [tail], 2 * BLOCK, os.RWF_NOWAIT) == 5000
        assert bytes(tail) == data[2 * BLOCK:]
    finally:
        os.close(fd)
    stage(layout, data, 65536, direct=False, stage_id="s2", read=False)  # all through it
    assert first_page_cached(layout.staged_path("s2"))


@pytest.mark.parametrize("answer", [errno.EINVAL, errno.EOPNOTSUPP])
def test_a_refused_o_direct_writes_through_the_cache(layout: Layout, answer: int,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    real_fcntl = fcntl.fcntl

    def refusing(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(answer, os.strerror(answer))
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fileio.fcntl, "fcntl", refusing)
    data = os.urandom(2 * BLOCK + 3)
    assert stage(layout, data, 65536, direct=True) == data
    assert stage(layout, data, 65536, direct=True, stage_id="s2") == data
    assert not direct_writes.direct_available()
    assert caplog.text.count("O_DIRECT refused") == 1  # logged once
    assert sorted(p.name for p in layout.staging.iterdir()) == ["s1", "s2"]  # no leftovers


@pytest.mark.parametrize("short_first", [False, True])
def test_a_refused_write_drops_o_direct_and_goes_on(layout: Layout, short_first: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    refused = []

    def refusing(fd: int, data) -> int:  # noqa: ANN001
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            if short_first and not refused:  # half the block lands, then the refusal
                refused.append("short")
                return real_write(fd, memoryview(data)[:len(data) // 2])
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refusing)
    data = os.urandom(3 * BLOCK + 10)
    assert stage(layout, data, 100_000, direct=True) == data
    assert len(refused) == 1 + short_first and not direct_writes.direct_available()


def test_other_errors_are_not_taken_for_a_refusal(layout: Layout,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int, data) -> int:  # noqa: ANN001
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", failing)
    with pytest.raises(OSError, match="Input/output"):
        stage(layout, os.urandom(BLOCK), 65536, direct=True)
    assert direct_writes.direct_available()
    assert list(layout.staging.iterdir()) == []


def test_a_body_that_ends_short_leaves_nothing_and_returns_its_block(layout: Layout) -> None:
    pool = direct_writes.POOL
    before = len(pool)

    async def short() -> int:
        return await staging.write_stage(layout, "s1", chunks(os.urandom(BLOCK + 10), 4096),
                                         BLOCK + 20, True)

    with pytest.raises(staging.StageError):
        asyncio.run(short())
    assert not layout.partial_path("s1").exists() and not layout.staged_path("s1").exists()
    assert len(pool) == max(before, 1)  # taken, then given back


def test_blocks_are_reused_and_the_pool_stays_bounded() -> None:
    pool = BlockPool(keep=2)
    first = pool.take()
    pool.give(first)
    assert pool.take() is first  # its pages stay mapped
    blocks = [first, pool.take(), pool.take()]
    for block in blocks:
        pool.give(block)
    assert len(pool) == 2 and blocks[2].closed


@pytest.mark.anyio
async def test_the_stage_route_writes_around_the_cache_when_asked(data_dir: Path) -> None:
    data = os.urandom(2 * BLOCK + 100)
    async with running_app(data_dir) as (app, client):
        layout = app.state.store.layout
        r = await client.put("/stage/x", content=data, params={"size": len(data), "cache": "0"})
        assert r.status_code == 200 and r.json()["size"] == len(data)
        if direct_writes_work(layout.root) and nowait_reads_work(layout.root):
            assert not first_page_cached(layout.staged_path("x"))
        assert layout.staged_path("x").read_bytes() == data
        r = await client.put("/stage/y", content=b"x", params={"cache": "no"})
        assert r.status_code == 400 and "cache" in r.json()["error"]
        assert not layout.staged_path("y").exists()


@pytest.mark.parametrize("policy, plain, bulk", [
    ("auto", [False] * 4 + [True] * 2, [True] * 6),
    ("parity", [False] * 4 + [True] * 2, [False] * 4 + [True] * 2),
    ("all", [True] * 6, [True] * 6),
    ("none", [False] * 6, [False] * 6)])
def test_which_fragments_the_gateway_sends_around_the_cache(policy: str, plain: list[bool],
                                                            bulk: list[bool]) -> None:
    config = parse_config(raw_config(volume_direct_writes=policy))
    assert [config.written_around_cache(i) for i in range(6)] == plain
    assert [config.written_around_cache(i, bulk=True) for i in range(6)] == bulk


def test_an_unknown_policy_is_refused() -> None:
    assert parse_config(raw_config()).volume_direct_writes == "auto"
    with pytest.raises(ConfigError, match="volume_direct_writes"):
        parse_config(raw_config(volume_direct_writes=True))


def test_a_bulk_write_is_a_part_or_a_large_body() -> None:
    assert ClusterConfig.is_bulk(BULK_WRITE_BYTES, multipart=False)
    assert not ClusterConfig.is_bulk(BULK_WRITE_BYTES - 1, multipart=False)
    assert not ClusterConfig.is_bulk(None, multipart=False)  # length unknown
    assert ClusterConfig.is_bulk(5, multipart=True)
