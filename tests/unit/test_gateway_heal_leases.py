"""HealLeases: one healer per version at a time, over the volumes' lease tables (fakes
of the volume client that call the real LeaseTable; no processes)."""

from __future__ import annotations

import asyncio

from gateway.objects.heal_leases import HealLeases, LeasedElsewhere
from gateway.objects.heal_refs import VersionRef
from gateway.objects.membership import Membership
from gateway.objects.volume_errors import VolumeUnavailable
from volume_server.heal_leases import LeaseTable

REF = VersionRef("inc", "key", "v1")
PLACEMENT = ("vol-a", "vol-b", "vol-c")


class FakeVolumes:
    def __init__(self, down: frozenset[str] = frozenset()) -> None:
        self.tables = {vid: LeaseTable() for vid in PLACEMENT}
        self.down = down
        self.asked: list[tuple[str, str, float]] = []

    async def heal_leases(self, volume_id: str, holder: str, seconds: float,
                          refs: list[tuple[str, str, str]]) -> list[bool]:
        self.asked.append((volume_id, holder, seconds))
        if volume_id in self.down:
            raise VolumeUnavailable(volume_id, "down")
        return self.tables[volume_id].claim(holder, refs, seconds)


class FakeCluster:
    def __init__(self, volumes: FakeVolumes, suspect: frozenset[str] = frozenset()) -> None:
        self.volumes = volumes
        self._suspect = suspect

    def placement(self, incarnation: str, key: str) -> tuple[str, ...]:
        return PLACEMENT

    def suspect(self, volume_id: str) -> bool:
        return volume_id in self._suspect


def healers(cluster: FakeCluster, seconds: float = 30.0, linger: float = 4.0
            ) -> tuple[HealLeases, HealLeases]:
    return (HealLeases(cluster, seconds, linger),  # type: ignore[arg-type]
            HealLeases(cluster, seconds, linger))  # type: ignore[arg-type]


def test_a_version_leased_by_one_healer_is_refused_to_the_other() -> None:
    one, two = healers(FakeCluster(FakeVolumes()))

    async def main() -> list[bool]:
        seen = []
        async with one.lease(REF) as first:
            seen.append(first.granted)
            async with two.lease(REF) as second:
                seen.append(second.granted)
        async with two.lease(REF) as after:  # released: the first did not heal
            seen.append(after.granted)
        return seen

    assert asyncio.run(main()) == [True, False, True]


def test_a_healed_version_stays_leased_for_the_linger() -> None:
    volumes = FakeVolumes()
    one, two = healers(FakeCluster(volumes), linger=4.0)

    async def main() -> bool:
        async with one.lease(REF) as lease:
            lease.healed = True
        async with two.lease(REF) as late:
            return late.granted

    assert asyncio.run(main()) is False
    assert volumes.asked[-2] == ("vol-a", one.holder, 4.0)  # the linger, not a release


def test_a_lease_is_renewed_while_its_heal_runs() -> None:
    volumes = FakeVolumes()
    one, two = healers(FakeCluster(volumes), seconds=0.3)

    async def main() -> bool:
        async with one.lease(REF):
            await asyncio.sleep(0.7)  # past the first term: only renewals keep it
            async with two.lease(REF) as other:
                return other.granted

    assert asyncio.run(main()) is False
    assert sum(1 for _, holder, s in volumes.asked if holder == one.holder and s == 0.3) >= 3


def test_a_heal_that_hangs_stops_renewing_its_lease() -> None:
    volumes = FakeVolumes()
    cluster = FakeCluster(volumes)
    one = HealLeases(cluster, 0.3, 4.0, max_hold=1.5)  # type: ignore[arg-type]
    two = HealLeases(cluster, 0.3, 4.0)  # type: ignore[arg-type]

    async def main() -> list[bool]:
        seen = []
        async with one.lease(REF):
            await asyncio.sleep(0.5)  # past the first term: renewals keep it
            async with two.lease(REF) as other:
                seen.append(other.granted)
            await asyncio.sleep(1.7)  # past max_hold: the last term has run out
            async with two.lease(REF) as other:
                seen.append(other.granted)
        return seen

    assert asyncio.run(main()) == [False, True]


def test_the_anchor_is_the_first_volume_not_suspected() -> None:
    volumes = FakeVolumes()
    one, _ = healers(FakeCluster(volumes, suspect=frozenset({"vol-a"})))

    async def main() -> None:
        async with one.lease(REF):
            pass

    asyncio.run(main())
    assert {vid for vid, _, _ in volumes.asked} == {"vol-b"}


def test_an_anchor_that_does_not_answer_lets_every_healer_heal() -> None:
    one, two = healers(FakeCluster(FakeVolumes(down=frozenset({"vol-a"}))))

    async def main() -> list[bool]:
        async with one.lease(REF) as first, two.lease(REF) as second:
            return [first.granted, second.granted]

    assert asyncio.run(main()) == [True, True]


def test_no_leases_when_their_term_is_zero() -> None:
    volumes = FakeVolumes()
    one, two = healers(FakeCluster(volumes), seconds=0)

    async def main() -> list[bool]:
        async with one.lease(REF) as first, two.lease(REF) as second:
            return [first.granted, second.granted]

    assert asyncio.run(main()) == [True, True]
    assert volumes.asked == []


def test_leased_heals_under_the_lease_and_says_when_another_holds_it() -> None:
    """HealLeases.leased: the heal runs only with the lease (LeasedElsewhere otherwise),
    and a heal that ended keeps the lease for the linger, so a second healer is told to
    wait rather than heal it again at once."""
    one, two = healers(FakeCluster(FakeVolumes()))
    healed: list[str] = []

    async def heal_by(name: str):  # noqa: ANN202 - a Heal
        async def heal(ref: VersionRef) -> None:
            healed.append(name)
        return heal

    async def main() -> list[str]:
        outcomes = []
        async with one.lease(REF) as held:
            assert held.granted
            try:
                await two.leased(await heal_by("two"))(REF)
            except LeasedElsewhere:
                outcomes.append("two: leased elsewhere")
        await one.leased(await heal_by("one"))(REF)
        try:
            await two.leased(await heal_by("two"))(REF)
        except LeasedElsewhere:
            outcomes.append("two: lingering")
        return outcomes

    assert asyncio.run(main()) == ["two: leased elsewhere", "two: lingering"]
    assert healed == ["one"]


def test_a_rebuild_heals_again_what_another_held_once_it_is_free() -> None:
    """Membership._heal_all: a version another healer holds is not taken as done; it is
    healed once the lease is free, and the rest at once."""
    volumes = FakeVolumes()
    cluster = FakeCluster(volumes)
    mine, theirs = (HealLeases(cluster, 0.3, 0.0),  # type: ignore[arg-type]
                    HealLeases(cluster, 0.3, 0.0))  # type: ignore[arg-type]
    other = VersionRef("inc", "key", "v2")
    healed: list[VersionRef] = []

    async def heal(ref: VersionRef) -> None:
        healed.append(ref)

    members = Membership(cluster, heal, 4, mine)  # type: ignore[arg-type]

    async def main() -> dict:
        async with theirs.lease(REF) as held:
            assert held.granted
            rebuild = asyncio.create_task(members._heal_all({REF, other}))
            await asyncio.sleep(0.2)
            assert healed == [other]  # REF waits for the lease
        return await asyncio.wait_for(rebuild, 5)

    outcomes = asyncio.run(main())
    assert outcomes == {REF: None, other: None}
    assert len(healed) == 2 and set(healed) == {other, REF}
