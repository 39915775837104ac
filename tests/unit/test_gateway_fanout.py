"""gateway.objects.fanout: stop waiting once enough volumes answered; slow ones are left behind."""

from __future__ import annotations

import asyncio

from gateway.objects.fanout import Unanswered, answered, first_answers


async def _after(seconds: float, value: object) -> object:
    await asyncio.sleep(seconds)
    if isinstance(value, Exception):
        raise value
    return value


def test_returns_once_enough_answered_and_cancels_the_rest() -> None:
    async def main() -> tuple[dict, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await first_answers({"a": _after(0, 1), "b": _after(0.01, 2),
                                       "slow": _after(30, 3)}, need=2, grace=0.05)
        return results, loop.time() - start

    results, took = asyncio.run(main())
    assert took < 5
    assert results["a"] == 1 and results["b"] == 2
    assert isinstance(results["slow"], Unanswered)
    assert answered(results) == {"a": 1, "b": 2}


def test_failures_do_not_count_towards_need() -> None:
    results = asyncio.run(first_answers({"x": _after(0, ValueError("down")), "y": _after(0, 1),
                                         "z": _after(0.02, 2)}, need=2))
    assert isinstance(results["x"], ValueError)
    assert answered(results) == {"y": 1, "z": 2}


def test_cancelled_call_is_unanswered_not_an_error() -> None:
    async def main() -> dict:
        victim = asyncio.ensure_future(asyncio.sleep(30))
        asyncio.get_running_loop().call_later(0.01, victim.cancel)
        return await first_answers({"v": victim, "w": _after(0, 1)}, need=2, grace=0)

    results = asyncio.run(main())
    assert isinstance(results["v"], Unanswered) and results["w"] == 1


def test_background_calls_keep_running_when_asked() -> None:
    async def main() -> list:
        done: list = []

        async def slow() -> None:
            await asyncio.sleep(0.05)
            done.append("finished")

        await first_answers({"fast": _after(0, 1), "slow": slow()}, need=1, grace=0,
                            cancel_rest=False)
        await asyncio.sleep(0.1)
        return done

    assert asyncio.run(main()) == ["finished"]
