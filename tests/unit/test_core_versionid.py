"""shardgate.versionid: UUIDv7-shaped ids from a hybrid logical clock."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest

from shardgate import versionid
from shardgate.versionid import HybridClock, new_version_id, version_time_ms

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def make_id(ms: int, counter: int) -> str:
    return f"{(ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62):032x}"


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Freeze the wall clock seen by shardgate.versionid; tests move `now_ns`."""
    state = SimpleNamespace(now_ns=1_700_000_000_000 * 1_000_000)
    monkeypatch.setattr(versionid, "time", SimpleNamespace(time_ns=lambda: state.now_ns))
    return state


def test_ids_strictly_increase_and_are_hex() -> None:
    ids = [new_version_id() for _ in range(10_000)]
    assert all(HEX32.match(i) for i in ids)
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
    assert len(set(ids)) == len(ids)


def test_uuidv7_layout() -> None:
    value = int(new_version_id(), 16)
    assert (value >> 76) & 0xF == 0x7          # version nibble
    assert (value >> 62) & 0b11 == 0b10        # RFC 9562 variant


def test_ids_sort_like_time(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    early = clock.next_id()
    frozen.now_ns += 5_000_000
    late = clock.next_id()
    assert early < late
    assert version_time_ms(late) - version_time_ms(early) == 5


def test_version_time_ms_is_the_wall_clock() -> None:
    before = time.time_ns() // 1_000_000
    ms = version_time_ms(HybridClock().next_id())
    after = time.time_ns() // 1_000_000
    assert before <= ms <= after
    assert version_time_ms(make_id(123456789, 7)) == 123456789


def test_clock_stepping_back_still_increases(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    first = clock.next_id()
    frozen.now_ns -= 10_000_000_000
    second = clock.next_id()
    assert second > first
    assert version_time_ms(second) == version_time_ms(first)


def test_observe_future_id_moves_clock_past_it(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    now_ms = frozen.now_ns // 1_000_000
    seen = make_id(now_ms + 60_000, 5)
    clock.observe(seen)
    nxt = clock.next_id()
    assert nxt > seen
    assert version_time_ms(nxt) == now_ms + 60_000
    assert (int(nxt, 16) >> 64) & 0xFFF == 6


def test_observe_older_id_changes_nothing(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    first = clock.next_id()
    clock.observe(make_id(version_time_ms(first) - 1000, 0xFFF))
    second = clock.next_id()
    assert (int(second, 16) >> 64) & 0xFFF == 1
    assert version_time_ms(second) == version_time_ms(first)


@pytest.mark.parametrize("garbage", ["", "null", "not-hex"])
def test_observe_ignores_non_ids(garbage: str) -> None:
    clock = HybridClock()
    clock.observe(garbage)
    assert clock.next_id()


def test_counter_overflow_rolls_to_next_ms(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    now_ms = frozen.now_ns // 1_000_000
    ids = [clock.next_id() for _ in range(0x1000)]
    assert {version_time_ms(i) for i in ids} == {now_ms}
    assert (int(ids[-1], 16) >> 64) & 0xFFF == 0xFFF
    rolled = clock.next_id()
    assert rolled > ids[-1]
    assert version_time_ms(rolled) == now_ms + 1
    assert (int(rolled, 16) >> 64) & 0xFFF == 0


def test_observe_at_counter_limit_rolls_over(frozen: SimpleNamespace) -> None:
    clock = HybridClock()
    now_ms = frozen.now_ns // 1_000_000
    seen = make_id(now_ms, 0xFFF)
    clock.observe(seen)
    nxt = clock.next_id()
    assert nxt > seen and version_time_ms(nxt) == now_ms + 1
