"""Sliced fragment reads: part of each framed fragment, tied to the CRC over all of it.

A short range wants only part of the data fragments at its edges, but a fragment's
CRC32C covers the whole fragment, so checking it took the whole fragment over the wire
(a quarter of a segment at each edge of a KV-cache range). A sliced read checks the
stored CRC where the whole fragment is, on its volume, and sends only the slice,
between the two running CRC values around it:

    start = crc32c(fragment[:lo], seed)      end = crc32c(fragment[lo:hi], start)
    crc32c(fragment[hi:], end) == the stored CRC

The reader recomputes `end` from `start` and the bytes it received. The slice is thus
the very run of bytes the volume's check went through, and a byte changed on the way
fails it. A fragment whose stored CRC does not match on the volume is sent with `end`
inverted, so the reader fails it exactly as it fails a bad whole fragment (decoding
around it and queueing it for healing). The seed is the archive's identity (seeded
parts only), so an archive in another's place still fails on the volume.

`SliceSpec` is the request: the CRC seed and, for each framed fragment in turn from the
first byte of an archive range, its length and the slice [lo, hi) of it to send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from awscrt.checksums import crc32c

from erasure.errors import FragmentCorrupt
from erasure.framing import CRC_SIZE
from erasure.params import MAX_SEGMENT_SIZE

SLICE_OVERHEAD = 2 * CRC_SIZE  # the running CRCs before and after each slice
MAX_FRAMES = 64
MAX_FRAME_BYTES = MAX_SEGMENT_SIZE + 64 * 1024  # a whole segment (k = 1), its header, CRC

_FRAME = r"[0-9]{1,9}:[0-9]{1,9}-[0-9]{1,9}"
_SPEC = re.compile(rf"([0-9]{{1,10}});((?:{_FRAME},){{0,{MAX_FRAMES - 1}}}{_FRAME})")


@dataclass(frozen=True)
class SliceSpec:
    """What to send of consecutive framed fragments: (frame length, lo, hi) each."""

    seed: int
    frames: tuple[tuple[int, int, int], ...]

    def encode(self) -> str:
        return f"{self.seed};" + ",".join(f"{n}:{lo}-{hi}" for n, lo, hi in self.frames)

    @classmethod
    def parse(cls, text: str) -> SliceSpec:
        """The spec `encode` wrote (at most MAX_FRAMES fragments); ValueError for anything
        else, or a slice that is not inside its fragment's bytes (the CRC after them is
        never sent)."""
        match = _SPEC.fullmatch(text)
        if not match:
            raise ValueError("slices: seed;length:lo-hi,...")
        seed = int(match.group(1))
        frames = tuple(tuple(int(v) for v in re.split(r"[:-]", f))
                       for f in match.group(2).split(","))
        if seed >= 1 << 32:
            raise ValueError("slices: the seed is a 32-bit CRC")
        for n, lo, hi in frames:
            if not (CRC_SIZE < n <= MAX_FRAME_BYTES and 0 <= lo <= hi <= n - CRC_SIZE):
                raise ValueError(f"slices: {lo}-{hi} is not inside a fragment of {n} bytes")
        return cls(seed, frames)  # type: ignore[arg-type]

    @property
    def span(self) -> int:
        """Archive bytes the fragments take."""
        return sum(n for n, _, _ in self.frames)

    def sent_sizes(self) -> list[int]:
        """Bytes a sliced read sends for each fragment, in turn."""
        return [hi - lo + SLICE_OVERHEAD for _, lo, hi in self.frames]

    @property
    def sent(self) -> int:
        """Bytes a sliced read sends."""
        return sum(self.sent_sizes())


def cut_slice(framed: bytes | memoryview, lo: int, hi: int, seed: int) -> tuple[bytes, bool]:
    """(what a volume sends for bytes [lo, hi) of one framed fragment, whether the
    fragment passed its stored CRC); a bad fragment's slice carries an inverted end."""
    view = memoryview(framed)
    body_end = view.nbytes - CRC_SIZE
    start = crc32c(view[:lo], seed)
    end = crc32c(view[lo:hi], start)
    intact = crc32c(view[hi:body_end], end) == int.from_bytes(view[body_end:], "big")
    if not intact:
        end ^= 0xFFFFFFFF
    return b"".join((start.to_bytes(CRC_SIZE, "big"), view[lo:hi],
                     end.to_bytes(CRC_SIZE, "big"))), intact


def check_slice(sent: bytes | memoryview, index: int) -> memoryview:
    """The slice inside what a volume sent, or FragmentCorrupt(index)."""
    view = memoryview(sent)
    if view.nbytes < SLICE_OVERHEAD:
        raise FragmentCorrupt(index, f"only {view.nbytes} bytes of a slice")
    body = view[CRC_SIZE:-CRC_SIZE]
    start = int.from_bytes(view[:CRC_SIZE], "big")
    if crc32c(body, start) != int.from_bytes(view[-CRC_SIZE:], "big"):
        raise FragmentCorrupt(index, "slice")
    return body
