"""bench/stats.py: the medians, spreads and percentiles the bench table shows."""

from __future__ import annotations

import pytest

from bench.stats import Summary, fmt, fmt_summary, median, percentile, ratio


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_ignores_input_order() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert median([5.0, 1.0]) == 3.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_and_its_text() -> None:
    s = Summary.of([120.0, 80.0, 100.0])
    assert (s.median, s.low, s.high, s.n) == (100.0, 80.0, 120.0, 3)
    assert fmt_summary(s) == "100 [80.0-120]"
    assert fmt_summary(Summary.of([2.5])) == "2.50"
    assert fmt_summary(None) == "-"


def test_ratio_and_fmt() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None
    assert fmt(None) == "-"
    assert fmt(1234.4) == "1,234"
    assert fmt(12.34) == "12.3"
