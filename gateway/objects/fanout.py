"""Fan a request out to several volumes and stop waiting once enough have answered.

A volume that is down answers at once (connection refused); one that hangs would hold
every request for the whole read timeout. Quorum reads only need `need` answers to be
correct, so after that the slow ones get a short grace and are then left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable
from typing import Any

GRACE_SECONDS = 0.05


class Unanswered(Exception):
    """The volume had not answered when the fan-out stopped waiting for it."""


async def first_answers(calls: dict[Hashable, Awaitable[Any]], need: int,
                        grace: float = GRACE_SECONDS,
                        cancel_rest: bool = True) -> dict[Hashable, Any]:
    """Run every call; return once `need` succeeded (plus `grace` seconds for the rest)
    or all finished. Values are results, or the exception (Unanswered if left behind).
    With cancel_rest=False the slow calls go on in the background (commits must)."""
    tasks = {asyncio.ensure_future(call): key for key, call in calls.items()}
    results: dict[Hashable, Any] = {}
    pending = set(tasks)
    ok = 0
    try:
        while pending and ok < need:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                results[tasks[task]] = outcome = _outcome(task)
                ok += not isinstance(outcome, BaseException)
        if pending and grace > 0:
            done, pending = await asyncio.wait(pending, timeout=grace)
            for task in done:
                results[tasks[task]] = _outcome(task)
    finally:
        for task in pending:
            if cancel_rest:
                task.cancel()
            else:
                task.add_done_callback(_retrieve)
            results[tasks[task]] = Unanswered()
    return results


def _outcome(task: asyncio.Future) -> Any:
    """A finished call's result, or its exception (cancelled calls count as unanswered)."""
    if task.cancelled():
        return Unanswered()
    error = task.exception()
    return error if error is not None else task.result()


def _retrieve(task: asyncio.Future) -> None:
    """Mark a background call's outcome as seen (its failure was already accounted for)."""
    if not task.cancelled():
        task.exception()


def answered(results: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """Only the calls that succeeded."""
    return {k: v for k, v in results.items() if not isinstance(v, BaseException)}
