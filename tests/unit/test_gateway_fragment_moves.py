"""gateway.objects.healer.copyable_moves and copy_passes: which fragments a move copies,
and from where."""

from __future__ import annotations

from gateway.objects.healer import copy_passes, copyable_moves


def test_only_changed_indexes_are_copied_from_their_old_holder() -> None:
    named = ("v1", "v2", "v3", "v4", "v5", "v6")
    target = ("v1", "v2", "v7", "v4", "v5", "v6")
    assert copyable_moves(named, target, down=[]) == {2: "v3"}


def test_nothing_moves_when_the_placement_is_the_same() -> None:
    named = ("v1", "v2", "v3")
    assert copyable_moves(named, named, down=["v9"]) == {}


def test_a_down_source_means_rebuilding_all() -> None:
    target = ("v1", "v7", "v8")
    assert copyable_moves(("v1", "v2", "v3"), target, down=["v3"]) == {}
    assert copyable_moves(("v1", None, "v3"), target, down=["v3"]) == {}


def test_an_index_nobody_held_is_left_to_rebuild_and_the_others_copied() -> None:
    # A write that reached only k volumes, one of which leaves: its fragment is copied
    # (rebuilding from the volumes that stay would find k - 1).
    named = ("v2", "v5", "v6", "v3", None, "v4")
    target = ("v2", "v5", "v6", "v3", "v7", "v1")
    assert copyable_moves(named, target, down=[]) == {5: "v4"}
    assert copyable_moves(("v1", None, "v3"), ("v1", "v7", "v8"), down=[]) == {2: "v3"}


def test_a_second_pass_rebuilds_only_when_an_index_was_never_written() -> None:
    assert copy_passes({2: "v3"}, ("v1", None, "v3")) == [{2: "v3"}, {}]
    assert copy_passes({2: "v3"}, ("v1", "v2", "v3")) == [{2: "v3"}]
    assert copy_passes({}, ("v1", None, "v3")) == [{}]  # rebuilding all already
