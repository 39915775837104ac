"""Query arguments that must be integers within bounds (partNumber, max-buckets, ...)."""

from __future__ import annotations

from gateway.errors import S3Error


def int_in_range(raw: str, low: int, high: int, name: str, message: str) -> int:
    """`raw` as an integer in [low, high]; InvalidArgument naming the argument otherwise."""
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise S3Error("InvalidArgument", message,
                      extra={"ArgumentName": name, "ArgumentValue": raw})
    return value
