"""Ring lookups: deterministic, distinct, zone-spread, balanced, and keyed by volume id only."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uhashring import HashRing

from placement import Ring, RingNode
from placement.ring import key_hash

REPO_ROOT = Path(__file__).resolve().parents[2]


def volumes(count: int, zones: int = 0) -> list[RingNode]:
    return [
        RingNode(f"vol-{i:02d}", zone=f"zone-{i % zones}" if zones else "") for i in range(count)
    ]


def sample_keys(count: int, incarnation: str = "bkt-1") -> list[str]:
    return [f"{incarnation}/photos/{i:06d}.jpg" for i in range(count)]


def test_key_hash_is_ketama_as_uhashring_computes_it() -> None:
    ketama = HashRing(["a"], hash_fn="ketama")
    for key in ["", "a", "bkt-1/x", "ünïcode/ключ", *sample_keys(50)]:
        assert key_hash(key) == ketama.hashi(key)


@pytest.mark.parametrize("count", [6, 12, 20])
def test_placements_are_distinct_known_volumes(count: int) -> None:
    ring = Ring(volumes(count))
    ids = {node.id for node in ring.nodes}
    for key in sample_keys(2000):
        placed = ring.placement(key, 6)
        assert len(placed) == 6
        assert len(set(placed)) == 6
        assert set(placed) <= ids


def test_six_volumes_six_fragments_uses_every_volume_at_every_index() -> None:
    ring = Ring(volumes(6))
    by_index: list[Counter[str]] = [Counter() for _ in range(6)]
    for key in sample_keys(6000):
        placed = ring.placement(key, 6)
        assert sorted(placed) == [f"vol-{i:02d}" for i in range(6)]
        for index, volume in enumerate(placed):
            by_index[index][volume] += 1
    # Each volume holds each fragment index for some keys, not one fixed index for all.
    for counter in by_index:
        assert len(counter) == 6
        assert max(counter.values()) < 2 * min(counter.values())


def test_placement_is_a_prefix_of_a_longer_one_without_zones() -> None:
    ring = Ring(volumes(12))
    for key in sample_keys(500):
        assert ring.placement(key, 4) == ring.placement(key, 6)[:4]


def test_too_many_or_too_few_fragments_raise() -> None:
    ring = Ring(volumes(6))
    with pytest.raises(ValueError):
        ring.placement("bkt-1/k", 7)
    with pytest.raises(ValueError):
        ring.placement("bkt-1/k", 0)


def test_same_answer_whatever_the_node_order_or_epoch() -> None:
    nodes = volumes(12, zones=3)
    ring = Ring(nodes)
    reordered = Ring(list(reversed(nodes)), epoch=7)
    assert reordered.nodes == ring.nodes
    for key in sample_keys(1000):
        assert reordered.placement(key, 6) == ring.placement(key, 6)


def test_url_changes_move_nothing_because_nodes_are_ids() -> None:
    # A volume server moving to another host or port keeps its id, weight and zone: the
    # ring is rebuilt from the same RingNodes (they have no URL) and places identically.
    before = Ring(volumes(12, zones=3), epoch=3)
    after = Ring([RingNode(n.id, n.weight, n.zone) for n in volumes(12, zones=3)], epoch=4)
    for key in sample_keys(2000):
        assert after.placement(key, 6) == before.placement(key, 6)


def placements_in_subprocess(hash_seed: str, ring_data: dict, keys: list[str]) -> list:
    script = (
        "import json, sys\n"
        "from placement import Ring\n"
        "data = json.load(sys.stdin)\n"
        "ring = Ring.from_dict(data['ring'])\n"
        "print(json.dumps([ring.placement(k, 6) for k in data['keys']]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps({"ring": ring_data, "keys": keys}),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_deterministic_across_processes_and_hash_seeds() -> None:
    nodes = volumes(19, zones=4) + [RingNode("vol-heavy", weight=2.5, zone="zone-1")]
    ring = Ring(nodes, epoch=2)
    keys = sample_keys(300)
    here = [list(ring.placement(k, 6)) for k in keys]
    assert placements_in_subprocess("1", ring.to_dict(), keys) == here
    assert placements_in_subprocess("4242", ring.to_dict(), keys) == here


def test_twelve_volumes_three_zones_get_exactly_two_each() -> None:
    nodes = volumes(12, zones=3)
    zone_of = {n.id: n.zone for n in nodes}
    ring = Ring(nodes)
    for key in sample_keys(3000):
        per_zone = Counter(zone_of[v] for v in ring.placement(key, 6))
        assert sorted(per_zone.values()) == [2, 2, 2]


def test_twenty_volumes_four_zones_at_most_two_each() -> None:
    nodes = volumes(20, zones=4)
    zone_of = {n.id: n.zone for n in nodes}
    ring = Ring(nodes)
    for key in sample_keys(3000):
        per_zone = Counter(zone_of[v] for v in ring.placement(key, 6))
        assert max(per_zone.values()) <= 2
        assert len(per_zone) >= 3


def test_impossible_zone_spread_fills_from_ring_order() -> None:
    nodes = [RingNode(f"a-{i}", zone="a") for i in range(6)]
    nodes += [RingNode("b-0", zone="b"), RingNode("c-0", zone="c")]
    ring = Ring(nodes)
    for key in sample_keys(500):
        placed = ring.placement(key, 6)
        assert len(set(placed)) == 6
        # cap is 2 per zone; b and c cannot give more than one each, so a gives 4.
        assert "b-0" in placed and "c-0" in placed


@settings(max_examples=60, deadline=None)
@given(
    zones=st.lists(st.sampled_from("abcde"), min_size=1, max_size=14),
    n=st.integers(min_value=1, max_value=14),
    key=st.text(max_size=30),
)
def test_zone_cap_holds_unless_impossible(zones: list[str], n: int, key: str) -> None:
    nodes = [RingNode(f"v{i}", zone=z) for i, z in enumerate(zones)]
    if n > len(nodes):
        with pytest.raises(ValueError):
            Ring(nodes, vnodes=8).placement(key, n)
        return
    ring = Ring(nodes, vnodes=8)
    placed = ring.placement(key, n)
    assert len(set(placed)) == n
    zone_of = {node.id: node.zone for node in nodes}
    sizes = Counter(zones)
    cap = math.ceil(n / len(sizes))
    per_zone = Counter(zone_of[v] for v in placed)
    if sum(min(size, cap) for size in sizes.values()) >= n:
        assert max(per_zone.values()) <= cap
    else:
        # Every zone gives all it can up to the cap before any zone passes it.
        for zone, size in sizes.items():
            assert per_zone[zone] >= min(size, cap)


def fragment_counts(ring: Ring, keys: list[str], n: int) -> Counter[str]:
    counts: Counter[str] = Counter({node.id: 0 for node in ring.nodes})
    for key in keys:
        counts.update(ring.placement(key, n))
    return counts


@pytest.mark.parametrize("count", [12, 20])
def test_balance_over_100k_keys(count: int) -> None:
    counts = fragment_counts(Ring(volumes(count)), sample_keys(100_000), 6)
    mean = sum(counts.values()) / count
    assert max(counts.values()) <= 1.25 * mean
    assert min(counts.values()) >= 0.75 * mean


def test_weight_two_volume_gets_noticeably_more() -> None:
    nodes = volumes(11) + [RingNode("vol-heavy", weight=2.0)]
    counts = fragment_counts(Ring(nodes), sample_keys(20_000), 6)
    heavy = counts.pop("vol-heavy")
    others = sum(counts.values()) / len(counts)
    # Below 2x: a volume holds at most one fragment of a key, and here n is half the ring.
    assert heavy >= 1.35 * others


def test_to_dict_round_trips_through_json() -> None:
    ring = Ring(volumes(12, zones=3) + [RingNode("vol-w", weight=1.5, zone="zone-0")], epoch=9)
    data = json.loads(json.dumps(ring.to_dict()))
    assert data["epoch"] == 9
    again = Ring.from_dict(data)
    assert again == ring
    assert again.epoch == 9
    for key in sample_keys(500):
        assert again.placement(key, 6) == ring.placement(key, 6)


@pytest.mark.parametrize(
    "data",
    [{}, {"nodes": None}, {"nodes": [{"weight": 1}]}, {"nodes": ["vol-1"]}, {"nodes": []}],
)
def test_from_dict_rejects_malformed_data(data: dict) -> None:
    with pytest.raises(ValueError):
        Ring.from_dict(data)


@pytest.mark.parametrize(
    "nodes",
    [
        [],
        [RingNode("a"), RingNode("a")],
        [RingNode("")],
        [RingNode("a", weight=0.0)],
        [RingNode("a", weight=-1.0)],
        [RingNode("a", weight=float("nan"))],
    ],
)
def test_invalid_rings_raise(nodes: list[RingNode]) -> None:
    with pytest.raises(ValueError):
        Ring(nodes)


def test_negative_epoch_raises() -> None:
    with pytest.raises(ValueError):
        Ring(volumes(3), epoch=-1)
