"""Fragment framing: each stored fragment carries its own CRC32, checked on every read."""

from __future__ import annotations

import zlib

from erasure.errors import FragmentCorrupt

CRC_SIZE = 4
"""Bytes of the big-endian CRC32 that follows every pyeclib fragment."""


def frame(fragment: bytes) -> bytes:
    """Append the big-endian CRC32 of `fragment` (one copy, by the concatenation)."""
    return fragment + zlib.crc32(fragment).to_bytes(CRC_SIZE, "big")


def check_frame(framed: bytes | bytearray | memoryview, index: int) -> bytes:
    """Return the pyeclib fragment inside `framed`, or raise FragmentCorrupt(index).

    The result is always `bytes`: pyeclib aborts the process (a C assertion) when given
    a memoryview or bytearray fragment, so no other type may reach it.
    """
    view = memoryview(framed)
    if view.nbytes <= CRC_SIZE:
        raise FragmentCorrupt(index, f"only {view.nbytes} bytes")
    body = view[:-CRC_SIZE]
    stored = int.from_bytes(view[-CRC_SIZE:], "big")
    if zlib.crc32(body) != stored:
        raise FragmentCorrupt(index)
    return bytes(body)
