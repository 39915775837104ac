"""The rebalancer's leadership (Rebalancer.run_forever) over a real embedded map store:
a move that stops by itself does not keep the lease idle; the lease runs out and the
same process leads again and moves."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.objects.cluster import Cluster
from gateway.objects.rebalancer import LEADER, Rebalancer
from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.mapstore.embedded import EmbeddedStore

pytestmark = pytest.mark.anyio


async def test_a_move_that_stopped_by_itself_lets_the_lease_go_and_leads_again(
        tmp_path: Path) -> None:
    config = ClusterConfig(
        volumes=tuple(VolumeSpec(id=f"v{i}", url=f"http://127.0.0.1:{9100 + i}")
                      for i in range(1, 7)), jwt_secret="x" * 32)
    config = replace(config, map=replace(config.map, path=str(tmp_path / "map.sqlite"),
                                         lease_seconds=1))
    store = EmbeddedStore(config.map.path)
    cluster = Cluster.build(config)
    view = SimpleNamespace(store=store, current=cluster.map, listeners=[])
    rebalancer = Rebalancer(cluster, view)  # type: ignore[arg-type]
    leads: list[int] = []  # the leader key's revision as each move began
    moved_again = asyncio.Event()

    async def move_once() -> None:
        snapshot = await store.read(config.map.prefix + LEADER)
        leads.append(next(iter(snapshot.entries.values())).mod_revision)
        if len(leads) == 1:
            raise asyncio.CancelledError  # not an Exception: ends the move task
        moved_again.set()
        await asyncio.Event().wait()

    rebalancer._move_forever = move_once  # type: ignore[method-assign]
    leading = asyncio.create_task(rebalancer.run_forever())
    try:
        await asyncio.wait_for(moved_again.wait(), 30)
    finally:
        leading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leading
        await store.close()
    assert len(leads) == 2 and leads[0] < leads[1]  # the key written anew: a new lease
