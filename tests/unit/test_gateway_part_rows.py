"""gateway.objects.part_rows.held_by: which volume holds each fragment of a part, from
the copies of its row that a rebalance left naming different holders."""

from __future__ import annotations

from gateway.objects.part_rows import held_by
from shardgate.manifest import PartManifest


def part(*placement: str | None) -> PartManifest:
    return PartManifest(1, 10, "e" * 32, "tag", tuple(placement))


def test_a_volume_naming_itself_wins_over_stale_copies():
    # index 2 moved from v3 to v7: only v7's row says so
    copies = {"v1": part("v1", "v2", "v3"), "v2": part("v1", "v2", "v3"),
              "v7": part("v1", "v2", "v7")}
    assert held_by(copies, {"v1", "v2", "v7"}) == ("v1", "v2", "v7")


def test_a_named_volume_that_answered_without_the_row_holds_nothing():
    copies = {"v1": part("v1", "v2", "v3"), "v2": part("v1", "v2", "v3")}
    assert held_by(copies, {"v1", "v2", "v3"}) == ("v1", "v2", None)


def test_a_named_volume_that_did_not_answer_keeps_its_index():
    copies = {"v1": part("v1", "v2", "v3"), "v2": part("v1", "v2", "v3")}
    assert held_by(copies, {"v1", "v2"}) == ("v1", "v2", "v3")


def test_an_index_no_write_reached_stays_empty():
    copies = {"v1": part("v1", None, "v3"), "v3": part("v1", None, "v3")}
    assert held_by(copies, {"v1", "v3"}) == ("v1", None, "v3")



def test_a_placement_volume_answering_without_the_row_keeps_its_index_for_complete():
    # v3 answered without this version's row (a re-upload of the part replaced it
    # there); it still holds the archive until the upload ends
    copies = {"v1": part("v1", "v2", "v3"), "v2": part("v1", "v2", "v3")}
    assert held_by(copies, {"v1", "v2", "v3"}, frozenset({"v1", "v2", "v3"})) == (
        "v1", "v2", "v3")
    # a volume that has left the placement is not taken at its word
    moved = {**copies, "v7": part("v1", "v2", "v7")}
    assert held_by(moved, {"v1", "v2", "v3", "v7"}, frozenset({"v1", "v2", "v7"})) == (
        "v1", "v2", "v7")
