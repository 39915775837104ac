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
    if len(answers) <= width - quorum:
        raise Undecided(f"{len(answers)} of {width} volumes answered")
    # A version deleted by its id (a tombstone anywhere) is never served, nor does it
    # hide older ones (volume_server/tombstones.py).
    forgotten = {row["version_id"] for versions in answers for row in versions
                 if row.get("forgotten")}
    holders: dict[str, int] = {}
    durable: set[str] = set()
    rows: dict[str, dict] = {}
    for versions in answers:
        for row in versions:
            vid = row["version_id"]
            if vid in forgotten:
                continue
            holders[vid] = holders.get(vid, 0) + 1
            rows.setdefault(vid, row)
            if row.get("durable"):
                durable.add(vid)
    skipped = []
    for vid in sorted(holders, reverse=True):
        if vid in durable or holders[vid] >= quorum:
            return Decision(rows[vid], skipped)
        if len(answers) - holders[vid] > width - quorum:
            skipped.append(vid)
            continue
        raise Undecided(f"version {vid} is on {holders[vid]} of {len(answers)} answers")
    return Decision(None, skipped)
