"""What a heal is about (one version of one key) and how it can end short of done;
the walk over a volume's rows and the bounded fan-out that the healer's sweeps share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

from gateway.objects.cluster import Cluster


@dataclass(frozen=True)
class VersionRef:
    incarnation: str
    key: str
    version_id: str


Heal = Callable[[VersionRef], Awaitable[None]]


class HealDeferred(Exception):
    """Not decidable now (a volume did not answer, a version too young, a volume
    rebuilding): try again in a later round."""

    def __init__(self, reason: str, waits_for_rebuild: bool = False) -> None:
        super().__init__(reason)
        self.waits_for_rebuild = waits_for_rebuild


class Unrecoverable(Exception):
    """Fewer than k good fragments are left of some segment: the version's rows are
    kept everywhere (so nothing older can be served in its place), its data is lost."""


async def walk_rows(cluster: Cluster, volume_id: str, page: int) -> AsyncIterator[list[dict]]:
    """A volume's rows (incarnation, key, version_id) in pages, in row order."""
    after = 0
    while True:
        answer = await cluster.volumes.scan(volume_id, after, page)
        if answer["rows"]:
            yield answer["rows"]
        if answer["next"] is None:
            return
        after = answer["next"]


async def heal_each(heal: Heal, refs: Iterable[VersionRef], concurrency: int
                    ) -> dict[VersionRef, Exception | None]:
    """Heal every ref, `concurrency` at a time; each one's error, or None when healed."""
    limiter = asyncio.Semaphore(concurrency)
    outcomes: dict[VersionRef, Exception | None] = {}

    async def one(ref: VersionRef) -> None:
        async with limiter:
            try:
                await heal(ref)
                outcomes[ref] = None
            except Exception as exc:  # noqa: BLE001 - handed to the caller to judge
                outcomes[ref] = exc

    await asyncio.gather(*(one(ref) for ref in refs))
    return outcomes
