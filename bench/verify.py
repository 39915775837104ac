"""Checks that keep the bench from reporting speed for wrong data: every body's length,
and for some GETs the bytes themselves against what was uploaded."""

from __future__ import annotations

import os
from pathlib import Path

from bench.crt import Outcome
from bench.s3shape import pattern_pieces


class WrongData(RuntimeError):
    """A response that was not the bytes asked for: the measurement is void."""


def check(outcome: Outcome, expected: int, statuses: tuple[int, ...] = (200, 206)) -> None:
    """Raise WrongData unless the request succeeded with exactly `expected` body bytes."""
    if outcome.error:
        raise WrongData(outcome.error)
    if outcome.status not in statuses:
        raise WrongData(f"HTTP {outcome.status}, expected one of {statuses}")
    if outcome.content_length is not None and outcome.content_length != expected:
        raise WrongData(f"content-length {outcome.content_length}, expected {expected}")
    if outcome.nbytes != expected:
        raise WrongData(f"received {outcome.nbytes} body bytes, expected {expected}")


def check_put(outcome: Outcome, size: int) -> None:
    """Raise WrongData unless an upload of `size` bytes was answered 200."""
    if outcome.error:
        raise WrongData(outcome.error)
    if outcome.status != 200 or outcome.nbytes != size:
        raise WrongData(f"PUT answered HTTP {outcome.status} after {outcome.nbytes} of "
                        f"{size} bytes")


def check_all(outcomes: list[Outcome], expected: list[int] | int) -> None:
    sizes = expected if isinstance(expected, list) else [expected] * len(outcomes)
    for outcome, size in zip(outcomes, sizes, strict=True):
        check(outcome, size)


def source_bytes(source: Path | None, start: int, end: int) -> bytes:
    """Bytes [start, end] of what a GET must return: the uploaded file's, or (source
    None) the pattern a zero-work ceiling serves for every object."""
    if source is None:
        return b"".join(pattern_pieces(start, end))
    with open(source, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start + 1)


def spot_check(outcome: Outcome, source: Path | None, start: int, end: int) -> None:
    """Compare a body written to `outcome.body_path` with the source bytes; delete it."""
    check(outcome, end - start + 1)
    assert outcome.body_path is not None
    try:
        got = Path(outcome.body_path).read_bytes()
    finally:
        os.unlink(outcome.body_path)
    want = source_bytes(source, start, end)
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                     min(len(got), len(want)))
        raise WrongData(f"bytes {start}-{end}: differ from the source at offset "
                        f"{start + first}")
