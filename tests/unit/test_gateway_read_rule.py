"""gateway.objects.read_rule: which version the volumes' answers prove current (4+2)."""

from __future__ import annotations

import contextlib
import itertools

import pytest

from gateway.objects.read_rule import Undecided, decide

WIDTH, QUORUM = 6, 4


def row(n: int, durable: bool = True, deleted: bool = False) -> dict:
    return {"version_id": f"{n:04d}", "durable": durable, "deleted": deleted}


def current(answers: list[list[dict]]) -> str | None:
    """The current version's id, None when the key is absent or its newest is deleted."""
    found = decide(answers, WIDTH, QUORUM).current
    return None if found is None or found["deleted"] else found["version_id"]


def test_settled_key_and_absent_key() -> None:
    assert current([[row(1)]] * 3) == "0001"
    assert current([[]] * 3) is None
    assert current([[row(2, deleted=True)]] * 3) is None
    assert decide([[row(2, deleted=True)]] * 3, WIDTH, QUORUM).current["version_id"] == "0002"


def test_too_few_answers_decide_nothing() -> None:
    with pytest.raises(Undecided):
        decide([[row(1)]] * 2, WIDTH, QUORUM)


def test_durable_anywhere_wins_over_older() -> None:
    # one volume already applied the notice; the others list v2 pending or not yet
    answers = [[row(2), ], [row(2, durable=False), row(1)], [row(1)]]
    assert current(answers) == "0002"


def test_pending_on_the_quorum_is_served() -> None:
    pending = [row(2, durable=False), row(1)]
    assert current([pending] * 4) == "0002"


def test_pending_version_that_cannot_have_a_quorum_is_skipped() -> None:
    # v2 on 2 of 6 answers: 4 answered without it, more than width - quorum = 2
    pending = [row(2, durable=False), row(1)]
    decision = decide([pending, pending, [row(1)], [row(1)], [row(1)], [row(1)]],
                      WIDTH, QUORUM)
    assert decision.current["version_id"] == "0001" and decision.skipped == ["0002"]


def test_pending_version_that_might_have_a_quorum_is_undecided() -> None:
    # v2 on 2 of 4 answers: the 2 volumes that did not answer may hold it too
    pending = [row(2, durable=False), row(1)]
    with pytest.raises(Undecided):
        decide([pending, pending, [row(1)], [row(1)]], WIDTH, QUORUM)


def test_acknowledged_version_is_never_skipped() -> None:
    """An acknowledged version is on >= 4 volumes: at most 2 answer without it, so it can
    never be skipped for the older one, whichever answers come."""
    acked = [row(2, durable=False), row(1)]
    for without in range(0, WIDTH - QUORUM + 1):
        volumes = [acked] * (WIDTH - without) + [[row(1)]] * without
        for n in range(WIDTH - QUORUM + 1, WIDTH + 1):
            for chosen in itertools.combinations(range(WIDTH), n):
                with contextlib.suppress(Undecided):
                    assert current([volumes[i] for i in chosen]) == "0002"


def test_failed_delete_on_one_volume_hides_nothing() -> None:
    failed = [row(2, durable=False, deleted=True), row(1)]
    assert current([failed] + [[row(1)]] * 5) == "0001"


def test_forgotten_versions_are_never_served_nor_hide_older_ones() -> None:
    gone = {"version_id": "0002", "forgotten": True, "durable": True, "deleted": False}
    # One volume holds the tombstone; two missed it and still list 0002 as durable.
    assert current([[gone, row(1)], [row(2), row(1)], [row(2), row(1)]]) == "0001"
    assert current([[gone], [row(2)], [row(2)]]) is None
