"""Summaries of repeated measurements: median and spread of repeats, latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks, so a
    p99 of 100 samples is not simply the maximum."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True)
class Summary:
    """What the table shows of one figure's repeats: the median and the min-max spread."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def ratio(ours: float | None, ceiling: float | None) -> float | None:
    """ours / ceiling, or None when either side is missing or the ceiling is zero."""
    if ours is None or ceiling is None or ceiling == 0:
        return None
    return ours / ceiling


def fmt(value: float | None) -> str:
    """A figure with about three significant digits; '-' when missing."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_summary(s: Summary | None) -> str:
    """'median [min-max]', or the bare figure when there was one repeat."""
    if s is None:
        return "-"
    if s.n == 1:
        return fmt(s.median)
    return f"{fmt(s.median)} [{fmt(s.low)}-{fmt(s.high)}]"
