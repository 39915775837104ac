"""The cluster map's membership rules: new epochs, refusals, the move's end."""

from __future__ import annotations

import pytest

from shardgate.clustermap import (
    ClusterMap,
    MapRefused,
    add_volume,
    drain_volume,
    finish_move,
    remove_volume,
    seed_map,
)
from shardgate.config import ClusterConfig, VolumeSpec


def six(zones: bool = False) -> ClusterMap:
    return seed_map(ClusterConfig(volumes=tuple(
        VolumeSpec(f"v{i}", f"http://127.0.0.1:{8100 + i}", zone=f"z{i % 3}" if zones else "")
        for i in range(1, 7))))


def test_the_seed_is_epoch_one_with_every_listed_volume_active():
    m = six()
    assert m.epoch == 1 and not m.moving
    assert m.ids() == [f"v{i}" for i in range(1, 7)]
    assert ClusterMap.from_dict(m.to_dict()) == m


def test_adding_publishes_the_next_epoch_and_keeps_the_previous_ring_until_moved():
    m = add_volume(six(), "v7", "http://127.0.0.1:8107", weight=2.0, zone="")
    assert m.epoch == 2 and m.moving
    assert m.volume("v7").state == "joining" and "v7" in {n.id for n in m.ring().nodes}
    assert "v7" not in {n.id for n in m.previous_ring().nodes}
    assert ClusterMap.from_dict(m.to_dict()) == m
    done = finish_move(m)
    assert done.volume("v7").state == "active" and not done.moving and done.epoch == 2


def test_listings_ask_a_draining_volume_only_while_its_move_lasts():
    m = drain_volume(finish_move(add_volume(six(), "v7", "http://h:7")), "v7")
    assert m.volume("v7").state == "draining" and m.moving
    assert m.placed_ids() == [f"v{i}" for i in range(1, 8)]
    done = finish_move(m)
    assert done.volume("v7").state == "draining" and "v7" in done.ids()
    assert done.placed_ids() == [f"v{i}" for i in range(1, 7)]
    joining = add_volume(done, "v8", "http://h:8")
    assert "v8" in joining.placed_ids() and "v7" not in joining.placed_ids()


def test_a_second_change_is_refused_while_a_move_runs():
    m = add_volume(six(), "v7", "http://h:1")
    with pytest.raises(MapRefused, match="still moving"):
        add_volume(m, "v8", "http://h:2")
    with pytest.raises(MapRefused, match="still moving"):
        drain_volume(m, "v1")


def test_ids_are_never_reused_and_must_be_plain():
    with pytest.raises(MapRefused, match="already in the map"):
        add_volume(six(), "v3", "http://h:1")
    with pytest.raises(MapRefused):
        add_volume(six(), "a/b", "http://h:1")


def test_drain_and_remove_refuse_to_leave_fewer_than_k_plus_m():
    with pytest.raises(MapRefused, match="needs at least"):
        drain_volume(six(), "v1")  # 4+2 on six volumes: none can go
    with pytest.raises(MapRefused, match="needs at least"):
        remove_volume(six(), "v1")
    seven = finish_move(add_volume(six(), "v7", "http://h:1"))
    drained = drain_volume(seven, "v2")
    assert drained.volume("v2").state == "draining" and "v2" not in drained.ids(("active",))
    assert "v2" in drained.ids()  # it still serves reads while its fragments move
    with pytest.raises(MapRefused, match="still draining"):
        remove_volume(drained, "v2")
    gone = remove_volume(finish_move(drained), "v2")
    assert gone.volume("v2").state == "gone" and gone.epoch == drained.epoch
    assert "v2" not in gone.ids() and "v2" not in gone.urls()


def test_removing_a_volume_still_in_the_ring_is_a_new_epoch_without_it():
    seven = finish_move(add_volume(six(), "v7", "http://h:1"))
    gone = remove_volume(seven, "v4")
    assert gone.epoch == seven.epoch + 1 and gone.moving
    assert "v4" in {n.id for n in gone.previous_ring().nodes}
    assert "v4" not in {n.id for n in gone.ring().nodes}


def test_zones_must_stay_as_many_as_the_width_allows():
    m = finish_move(add_volume(six(zones=True), "v7", "http://h:1", zone="z1"))
    # z0 holds v3 and v6: draining one keeps three zones
    m2 = finish_move(drain_volume(m, "v3"))
    with pytest.raises(MapRefused):
        drain_volume(m2, "v6")  # the last of zone z0 (and too few volumes anyway)
