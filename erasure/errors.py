"""Errors of the erasure layer, as data: the caller decides what each one costs a request."""

from __future__ import annotations


class ErasureError(Exception):
    """Something is wrong with fragments handed to the codec."""


class FragmentCorrupt(ErasureError):
    """Fragment `index` failed its checksum or names another index: fetch another one."""

    def __init__(self, index: int, reason: str = "checksum mismatch") -> None:
        super().__init__(f"fragment {index} is corrupt: {reason}")
        self.index = index
        self.reason = reason


class NotEnoughFragments(ErasureError):
    """Fewer than k fragments were given, so the segment cannot be rebuilt."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(f"{have} fragments given, {need} needed")
        self.have = have
        self.need = need


class RangeNotSatisfiable(Exception):
    """A Range header names no byte of the object: S3 answers 416 InvalidRange.

    Not an ErasureError on purpose: it is the client's mistake, not a storage fault.
    `size` is the object size, for the `Content-Range: bytes */size` header.
    """

    def __init__(self, size: int) -> None:
        super().__init__(f"range not satisfiable for an object of {size} bytes")
        self.size = size
