"""The map store's contract, the same on a real etcd and on the embedded SQLite file:
compare-and-set, prefix reads at a revision, watches that resume or say compacted,
leases that expire their keys, and an etcd member killed (of three): a follower changes
nothing, the leader costs one election."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from shardgate.mapstore import Compacted, MapStore, MapUnavailable
from shardgate.mapstore.embedded import EmbeddedStore
from shardgate.mapstore.etcd import EtcdStore, channel_targets
from tests.e2e.etcd import Etcd

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = Etcd(tmp_path_factory.mktemp("etcd")).start()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "etcd"])
def make_store(request, tmp_path):
    """A factory of stores that share one backing store (two of them are two processes'
    views of it)."""
    if request.param == "embedded":
        return lambda: EmbeddedStore(tmp_path / "map.sqlite")
    endpoints = tuple(request.getfixturevalue("etcd").endpoints)
    return lambda: EtcdStore(endpoints)


def run(coro):
    return asyncio.run(coro)


def prefix_of(request) -> str:
    return f"/t/{request.node.name}/"


def test_compare_and_set_lets_one_of_two_writers_win(make_store, request):
    p = prefix_of(request)

    async def scenario():
        a, b = make_store(), make_store()
        try:
            assert await a.put(p + "map", b"one", if_revision=0)
            assert not await b.put(p + "map", b"two", if_revision=0)  # it exists now
            snap = await b.read(p)
            rev = snap.entries[p + "map"].mod_revision
            assert await b.put(p + "map", b"two", if_revision=rev)
            assert not await a.put(p + "map", b"three", if_revision=rev)  # stale
            snap = await a.read(p)
            assert snap.entries[p + "map"].value == b"two"
            assert snap.revision >= snap.entries[p + "map"].mod_revision
            await a.delete(p + "map")
            assert (await b.read(p)).entries == {}
        finally:
            await a.close()
            await b.close()
    run(scenario())


def test_a_watch_sees_every_change_from_its_revision_in_order(make_store, request):
    p = prefix_of(request)

    async def scenario():
        writer, watcher = make_store(), make_store()
        try:
            start = (await writer.read(p)).revision + 1
            await writer.put(p + "a", b"1")
            await writer.put(p + "b", b"2")
            await writer.delete(p + "a")
            await writer.put("/elsewhere/" + request.node.name, b"not under the prefix")
            seen = []

            async def collect():
                async for events in watcher.watch(p, start):
                    seen.extend(events)
                    if len(seen) >= 4:
                        return
            task = asyncio.create_task(collect())
            await asyncio.sleep(0.3)
            await writer.put(p + "c", b"3")  # arrives while watching
            await asyncio.wait_for(task, 10)
            assert [(e.key, e.value) for e in seen] == [
                (p + "a", b"1"), (p + "b", b"2"), (p + "a", None), (p + "c", b"3")]
            assert [e.revision for e in seen] == sorted(e.revision for e in seen)
        finally:
            await writer.close()
            await watcher.close()
    run(scenario())


def test_a_lease_that_is_not_refreshed_takes_its_keys_with_it(make_store, request):
    p = prefix_of(request)

    async def scenario():
        store = make_store()
        try:
            kept, dropped = await store.grant_lease(2), await store.grant_lease(2)
            await store.put(p + "kept", b"x", lease=kept)
            await store.put(p + "dropped", b"y", lease=dropped)
            for _ in range(8):  # 4 s: past the ttl, refreshing only one
                await asyncio.sleep(0.5)
                assert await store.refresh_lease(kept)
            assert set((await store.read(p)).entries) == {p + "kept"}
        finally:
            await store.close()
    run(scenario())


def test_a_watch_behind_the_kept_history_says_compacted(tmp_path):
    from shardgate.mapstore import embedded

    async def scenario():
        store = EmbeddedStore(tmp_path / "map.sqlite")
        try:
            for i in range(embedded.KEEP_EVENTS + 1000):
                await store.put("/t/k", str(i).encode())
            with pytest.raises(Compacted):
                async for _ in store.watch("/t/", 2):
                    pass
        finally:
            await store.close()
    run(scenario())


def test_etcd_compaction_is_reported_to_a_watch(etcd):
    async def scenario():
        store = EtcdStore(tuple(etcd.endpoints))
        try:
            for i in range(3):
                await store.put("/t/compacted/k", str(i).encode())
            rev = (await store.read("/t/compacted/")).revision
            await store._client.compact(rev)
            with pytest.raises(Compacted):
                async for _ in store.watch("/t/compacted/", 1):
                    pass
        finally:
            await store.close()
    run(scenario())


def test_an_unreachable_etcd_is_unavailable_not_a_hang(tmp_path):
    from tests.e2e.cluster import free_port

    async def scenario():
        store = EtcdStore((f"127.0.0.1:{free_port()}",), timeout_seconds=1.0)
        try:
            with pytest.raises(MapUnavailable):
                await asyncio.wait_for(store.read("/t/"), 5)
        finally:
            await store.close()
    run(scenario())


def kill_and_write_on(tmp_path, victim: Callable[[Etcd], str], first: bool,
                      timeout: float, election: bool) -> None:
    """Write, SIGKILL one of three members (`victim` names it; first in the store's
    endpoints if `first`), then twenty writes in a row must succeed, the last one read
    back. With `election`, writes may say MapUnavailable (never anything else) until a
    new leader is elected, within 30 s."""
    trio = Etcd(tmp_path, members=3).start()
    try:
        member = victim(trio)
        ours = trio.endpoints[trio.names.index(member)]
        endpoints = [ours, *(e for e in trio.endpoints if e != ours)] if first \
            else trio.endpoints

        async def scenario():
            store: MapStore = EtcdStore(tuple(endpoints), timeout_seconds=timeout)
            try:
                assert await store.put("/t/trio/k", b"before", if_revision=0)
                trio.kill_member(member)
                deadline = asyncio.get_running_loop().time() + 30
                while election:
                    try:
                        await store.put("/t/trio/k", b"elected")
                        break
                    except MapUnavailable:
                        assert asyncio.get_running_loop().time() < deadline
                        await asyncio.sleep(0.1)
                for i in range(20):
                    assert await store.put("/t/trio/k", f"after {i}".encode())
                assert (await store.read("/t/trio/")).entries["/t/trio/k"].value == b"after 19"
            finally:
                await store.close()
        run(scenario())
    finally:
        trio.stop()


def test_a_dead_follower_first_in_the_channel_changes_nothing(tmp_path):
    """The channel's first endpoint dies (a follower, so no election): every write goes on
    through the next address without one failure."""
    kill_and_write_on(tmp_path, lambda trio: next(n for n in trio.names if n != trio.leader()),
                      first=True, timeout=3.0, election=False)


def test_a_dead_leader_costs_one_election_then_writes_go_on(tmp_path):
    """The leader dies: writes during the election may fail as MapUnavailable (never
    anything else, never a false success), then go on against the two left."""
    kill_and_write_on(tmp_path, lambda trio: trio.leader(), first=False, timeout=1.0,
                      election=True)


def test_addresses_form_one_grpc_target_and_host_names_one_each():
    assert channel_targets(("127.0.0.1:2379",)) == [("127.0.0.1", 2379)]
    assert channel_targets(("http://10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379")) == [
        ("ipv4:10.0.0.1:2379,10.0.0.2:2379,10.0.0.3", 2379)]
    assert channel_targets(("etcd-0:2379", "etcd-1:2379")) == [("etcd-0", 2379),
                                                                ("etcd-1", 2379)]


def test_a_dead_first_host_name_endpoint_is_passed_over(etcd):
    from tests.e2e.cluster import free_port

    async def scenario():
        port = etcd.client_ports["m0"]
        store = EtcdStore((f"localhost:{free_port()}", f"localhost:{port}"),
                          timeout_seconds=1.0)
        try:
            for _ in range(3):
                try:
                    await store.put("/t/rotate/k", b"v")
                    break
                except MapUnavailable:
                    continue
            assert (await store.read("/t/rotate/")).entries["/t/rotate/k"].value == b"v"
        finally:
            await store.close()
    run(scenario())
