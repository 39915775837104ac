"""The rebalancer's leadership (Rebalancer.run_forever) over a real embedded map store:
a move that stops by itself does not keep the lease idle; the lease runs out and the
same process leads again and moves. A leader whose refreshes go unconfirmed for a lease
term stops moving."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.objects.cluster import Cluster
from gateway.objects.rebalancer import LEADER, Rebalancer
from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.mapstore import MapUnavailable
from shardgate.mapstore.embedded import EmbeddedStore

pytestmark = pytest.mark.anyio


class FlakyStore(EmbeddedStore):
    """An embedded store whose lease refreshes can be made to hang or fail."""
    refreshes = "answer"

    async def refresh_lease(self, lease: int) -> bool:
        if self.refreshes == "hang":
            await asyncio.Event().wait()
        if self.refreshes == "fail":
            raise MapUnavailable("store unreachable")
        if self.refreshes == "fail-late":
            await asyncio.sleep(0.24)
            raise MapUnavailable("store unreachable")
        return await super().refresh_lease(lease)


def one_second_leases(tmp_path: Path) -> tuple[Rebalancer, FlakyStore]:
    config = ClusterConfig(
        volumes=tuple(VolumeSpec(id=f"v{i}", url=f"http://127.0.0.1:{9100 + i}")
                      for i in range(1, 7)), jwt_secret="x" * 32)
    config = replace(config, map=replace(config.map, path=str(tmp_path / "map.sqlite"),
                                         lease_seconds=1))
    store = FlakyStore(config.map.path)
    cluster = Cluster.build(config)
    view = SimpleNamespace(store=store, current=cluster.map, listeners=[])
    return Rebalancer(cluster, view), store  # type: ignore[arg-type]


async def test_a_move_that_stopped_by_itself_lets_the_lease_go_and_leads_again(
        tmp_path: Path) -> None:
    rebalancer, store = one_second_leases(tmp_path)
    config = rebalancer.config
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


@pytest.mark.parametrize("refreshes", ["hang", "fail", "fail-late"])
async def test_a_leader_whose_refreshes_go_unconfirmed_stops_within_a_lease_term(
        tmp_path: Path, refreshes: str) -> None:
    rebalancer, store = one_second_leases(tmp_path)
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    stopped: list[float] = []
    silent_since = 0.0

    async def move_until_stopped() -> None:
        nonlocal silent_since
        if not started.is_set():  # the first lead only (it leads again once stopped)
            started.set()
            store.refreshes = refreshes
            silent_since = loop.time()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(loop.time())

    rebalancer._move_forever = move_until_stopped  # type: ignore[method-assign]
    leading = asyncio.create_task(rebalancer.run_forever())
    try:
        await asyncio.wait_for(started.wait(), 30)
        for _ in range(50):
            if stopped:
                break
            await asyncio.sleep(0.1)
    finally:
        leading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leading
        await store.close()
    # The lease was granted before the move began, so the move stops within one term
    # of its start, not at the next refresh after the term (1.23 s for "fail-late").
    assert stopped and stopped[0] - silent_since <= 1.12
