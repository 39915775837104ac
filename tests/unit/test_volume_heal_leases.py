"""LeaseTable: one live holder per version, renewals, releases, lapses on the volume's clock."""

from __future__ import annotations

from volume_server import heal_leases
from volume_server.heal_leases import LeaseTable

A = ("inc", "key", "v1")
B = ("inc", "key", "v2")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_live_lease_refuses_another_holder_and_renews_for_its_own() -> None:
    clock = Clock()
    table = LeaseTable(clock)
    assert table.claim("g1", [A, B], 30) == [True, True]
    assert table.claim("g2", [A, B], 30) == [False, False]
    clock.now += 29
    assert table.claim("g1", [A], 30) == [True]  # renewed: good until 159
    clock.now += 2
    assert table.claim("g2", [A, B], 30) == [False, True]  # B lapsed at 130


def test_a_release_frees_the_version_and_only_its_holder_can_release() -> None:
    table = LeaseTable(Clock())
    assert table.claim("g1", [A], 30) == [True]
    assert table.claim("g2", [A], 0) == [False]  # not g2's to release
    assert table.claim("g2", [A], 30) == [False]
    assert table.claim("g1", [A], 0) == [True]
    assert len(table) == 0
    assert table.claim("g2", [A], 30) == [True]


def test_lapsed_leases_are_swept_once_many_are_held(monkeypatch) -> None:
    monkeypatch.setattr(heal_leases, "SWEEP_AT", 3)
    clock = Clock()
    table = LeaseTable(clock)
    table.claim("g1", [("i", str(n), "v") for n in range(3)], 5)
    clock.now += 10
    assert table.claim("g1", [A], 5) == [True]
    assert len(table) == 1
