"""The read rule: which version of a key the volumes' answers prove current (pure).

Every volume of the placement answers with its rows of the key from the newest down to
the newest it holds as durable. A version is *proven* when some volume holds it as
durable (the gateway sends that notice only after the commit quorum) or when at least
the write quorum of answers list it. A newer version that is not proven may still be
skipped, but only when more than width - quorum volumes answered without it: then it can
never have reached the quorum, so it was never acknowledged. Otherwise the answers
cannot decide, and the caller asks more volumes or answers 503 (docs/durability.md).

Worked example, 4+2 (width 6, quorum 4): v2 is listed by 3 volumes, 3 answered without
it. 3 > 6 - 4, so v2 cannot be on 4 volumes: skip it and serve v1 if v1 is proven. With
only 5 answers (2 without v2), v2 might be on the sixth and on 4 in all: undecided.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Undecided(Exception):
    """Too few answers to tell which version is current."""


@dataclass(frozen=True)
class Decision:
    """The current version's row (a delete marker's included; None: no version at all)
    and the versions skipped as never acknowledged (for the healer to roll back)."""

    current: dict | None
    skipped: list[str] = field(default_factory=list)


def decide(answers: list[list[dict]], width: int, quorum: int) -> Decision:
    """Apply the read rule to the answers of distinct volumes of one placement."""
    return decide_placements([answers], width, quorum)


def decide_placements(placements: list[list[list[dict]]], width: int, quorum: int
                      ) -> Decision:
    """The read rule over the answers of each placement a key has while fragments move
    between two ring epochs (docs/cluster-map.md): every placement needs more than
    width - quorum answers; a version is proven by a durable mark anywhere or the quorum
    within one placement, and a newer unproven one is skipped only when it can have
    reached the quorum in none of them. With one placement this is the rule above."""
    for answers in placements:
        if len(answers) <= width - quorum:
            raise Undecided(f"{len(answers)} of {width} volumes answered")
    # A version deleted by its id (a tombstone anywhere) is never served, nor does it
    # hide older ones (volume_server/tombstones.py).
    forgotten = {row["version_id"] for answers in placements for versions in answers
                 for row in versions if row.get("forgotten")}
    holders: list[dict[str, int]] = []
    durable: set[str] = set()
    rows: dict[str, dict] = {}
    for answers in placements:
        counted: dict[str, int] = {}
        for versions in answers:
            for row in versions:
                vid = row["version_id"]
                if vid in forgotten:
                    continue
                counted[vid] = counted.get(vid, 0) + 1
                rows.setdefault(vid, row)
                if row.get("durable"):
                    durable.add(vid)
        holders.append(counted)
    skipped = []
    for vid in sorted(rows, reverse=True):
        if vid in durable or any(h.get(vid, 0) >= quorum for h in holders):
            return Decision(rows[vid], skipped)
        if all(len(answers) - h.get(vid, 0) > width - quorum
               for answers, h in zip(placements, holders, strict=True)):
            skipped.append(vid)
            continue
        seen = max(h.get(vid, 0) for h in holders)
        raise Undecided(f"version {vid} is on {seen} of {len(placements[0])} answers")
    return Decision(None, skipped)
