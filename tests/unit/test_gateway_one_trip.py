"""one_trip.allowed: when a commit fenced on its own id may skip the read or the stage
(a fake cluster with the quorums and placements; no processes)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.objects import one_trip


@dataclass
class FakeCluster:
    width: int
    write_quorum: int
    ack_quorum: int
    moving: bool = False

    def previous_placement(self, incarnation: str, key: str) -> tuple[str, ...] | None:
        return ("v1", "v2", "v3", "v4", "v5", "v7") if self.moving else None


@pytest.mark.parametrize("width, write_quorum, ack_quorum, allowed", [
    (6, 5, 5, True),    # 4+2
    (6, 5, 6, True),    # 4+2, every fragment before an acknowledgement
    (5, 4, 4, True),    # 3+2
    (7, 3, 4, False),   # 2+5 with min_write_fragments 4: 3 + 4 volumes need not meet
    (7, 3, 5, True),
])
def test_any_two_quorums_must_share_a_volume(width, write_quorum, ack_quorum, allowed):
    cluster = FakeCluster(width, write_quorum, ack_quorum)
    assert one_trip.allowed(cluster, "inc", "key") is allowed  # type: ignore[arg-type]


def test_not_while_the_key_moves_to_a_new_placement():
    cluster = FakeCluster(6, 5, 5, moving=True)
    assert one_trip.allowed(cluster, "inc", "key") is False  # type: ignore[arg-type]
