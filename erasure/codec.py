"""Encode, decode and rebuild one segment at a time with pyeclib, fragments framed by CRC32C.

pyeclib is used through this class only, and its exceptions become ours here: the rest of
shardgate never sees an ECDriverError. Every method is a pure function of its arguments;
pyeclib holds the GIL while it works, so threads may share one Codec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyeclib.ec_iface import ECDriver, ECDriverError, ECInsufficientFragments

from erasure.errors import ErasureError, FragmentCorrupt, NotEnoughFragments
from erasure.framing import CRC_SIZE, check_frame, frame
from erasure.layout import ArchiveLayout
from erasure.params import check_params
from erasure.slices import check_slice


class Codec:
    """k data + m parity fragments per segment of at most `segment_size` bytes."""

    def __init__(self, k: int, m: int, ec_type: str = "isa_l_rs_vand",
                 segment_size: int = 1 << 20) -> None:
        check_params(k, m, ec_type, segment_size)
        try:
            self._driver = ECDriver(k=k, m=m, ec_type=ec_type)
        except ECDriverError as exc:
            raise ValueError(f"pyeclib refuses {ec_type} with k={k}, m={m}: {exc}") from exc
        self.k = k
        self.m = m
        self.ec_type = ec_type
        self.segment_size = segment_size
        self._header, self.systematic = self._probe()

    def _probe(self) -> tuple[int, bool]:
        """The backend's fragment header size, and whether its data fragments hold the
        segment as it is (payload i = bytes [i * p, (i + 1) * p)): learned by encoding a
        known segment once, not assumed from the backend's name."""
        probe = bytes(range(256)) * 40 + b"odd tail"
        fragments = self._driver.encode(probe)
        header = len(fragments[0]) - self._driver.get_metadata(fragments[0], 1)["size"]
        joined = b"".join(f[header:] for f in fragments[: self.k])
        return header, joined[: len(probe)] == probe

    def __repr__(self) -> str:
        return (f"Codec(k={self.k}, m={self.m}, ec_type={self.ec_type!r}, "
                f"segment_size={self.segment_size})")

    @property
    def fragment_count(self) -> int:
        """k + m: fragments per segment, and fragment archives per object."""
        return self.k + self.m

    def encode_segment(self, data: bytes, seeds: Sequence[int] | None = None) -> list[bytes]:
        """Encode one segment (1..segment_size bytes) into k+m framed fragments, by index;
        fragment i's CRC starts from seeds[i] (its archive's identity) when given."""
        if not 1 <= len(data) <= self.segment_size:
            raise ValueError(f"a segment holds 1..{self.segment_size} bytes, not {len(data)}")
        if type(data) is not bytes:
            data = bytes(data)  # pyeclib refuses anything but bytes
        try:
            fragments = self._driver.encode(data)
        except ECDriverError as exc:
            raise ErasureError(f"encode failed: {exc}") from exc
        if seeds is None:
            return [frame(fragment) for fragment in fragments]
        return [frame(fragment, seed) for fragment, seed in zip(fragments, seeds, strict=True)]

    def unframe(self, framed: bytes, index: int, seed: int = 0) -> bytes:
        """The pyeclib fragment inside `framed`, checked to be fragment `index`, intact.

        Raises FragmentCorrupt(index) if the CRC32C does not match, or if the pyeclib
        header inside names another index (an archive stored under the wrong name).
        """
        self._check_index(index)
        fragment = check_frame(framed, index, seed)
        try:
            stored_index = self._driver.get_metadata(fragment, 1)["index"]
        except ECDriverError as exc:
            raise FragmentCorrupt(index, f"unreadable pyeclib header: {exc}") from exc
        if stored_index != index:
            raise FragmentCorrupt(index, f"holds fragment {stored_index}")
        return fragment

    def decode_segment(self, fragments: Mapping[int, bytes],
                       seeds: Mapping[int, int] | None = None) -> bytes:
        """Rebuild a segment from any k or more framed fragments, keyed by fragment index.

        Every fragment given is checked; the first bad one raises FragmentCorrupt(index),
        so a caller drops it, fetches another and calls again. Give the k data fragments
        (indexes 0..k-1) when they are at hand: the segment is then their concatenation,
        with no arithmetic. Raises NotEnoughFragments with fewer than k. `seeds` (by
        index) are the archives' CRC seeds, when they were written seeded.
        """
        payloads = self._unframe_all(fragments, seeds)
        try:
            return self._driver.decode(payloads[: self.k])
        except ECInsufficientFragments as exc:
            raise NotEnoughFragments(len(payloads), self.k) from exc
        except ECDriverError as exc:
            raise ErasureError(f"decode failed: {exc}") from exc

    def reconstruct(self, fragments: Mapping[int, bytes], missing: Sequence[int],
                    seeds: Mapping[int, int] | None = None) -> dict[int, bytes]:
        """Rebuild the framed fragments `missing` from k or more others, byte-identical.

        `fragments` may include the indexes being rebuilt (a corrupt copy, say): those are
        ignored. Raises FragmentCorrupt or NotEnoughFragments like decode_segment. With
        `seeds`, sources are checked and rebuilt fragments framed with their own seed.
        """
        seeds = seeds or {}
        wanted = sorted(set(missing))
        for index in wanted:
            self._check_index(index)
        if not wanted:
            return {}
        sources = {i: f for i, f in fragments.items() if i not in wanted}
        payloads = self._unframe_all(sources, seeds)
        try:
            rebuilt = self._driver.reconstruct(payloads[: self.k], wanted)
            # pyeclib returns them in its own order (sorted, whatever the order asked
            # for): place each one by the index in its header.
            out = {}
            for fragment in rebuilt:
                index = self._driver.get_metadata(fragment, 1)["index"]
                out[index] = frame(fragment, seeds.get(index, 0))
        except ECInsufficientFragments as exc:
            raise NotEnoughFragments(len(payloads), self.k) from exc
        except ECDriverError as exc:
            raise ErasureError(f"reconstruct failed: {exc}") from exc
        if sorted(out) != wanted:
            raise ErasureError(f"reconstruct returned fragments {sorted(out)}, not {wanted}")
        return out

    def data_indexes(self, segment_length: int, lo: int, hi: int) -> range:
        """The data fragments that hold bytes [lo, hi) of a segment of `segment_length`
        bytes (a systematic code only)."""
        per = self.framed_size(segment_length) - CRC_SIZE - self._header
        return range(lo // per, (hi - 1) // per + 1)

    def join_data(self, fragments: Mapping[int, bytes], segment_length: int, lo: int,
                  hi: int, seeds: Mapping[int, int] | None = None) -> bytes:
        """Bytes [lo, hi) of a segment, cut from the framed data fragments that hold them
        (`data_indexes`), each checked as `unframe` checks it: no decoding, and no need
        for the other fragments of the segment. Raises FragmentCorrupt as unframe."""
        per = self.framed_size(segment_length) - CRC_SIZE - self._header
        seeds = seeds or {}
        pieces = []
        for i in self.data_indexes(segment_length, lo, hi):
            payload = memoryview(self.unframe(fragments[i], i, seeds.get(i, 0)))[self._header:]
            pieces.append(payload[max(lo - i * per, 0):min(hi - i * per, per)])
        return b"".join(pieces)

    def data_slices(self, segment_length: int, lo: int, hi: int) -> dict[int, tuple[int, int]]:
        """For each data fragment holding bytes [lo, hi) of a segment, the bytes [a, b) of
        its framed fragment that hold them (past the pyeclib header): what a sliced read
        (slices.py) asks of it."""
        per = self.framed_size(segment_length) - CRC_SIZE - self._header
        return {i: (self._header + max(lo - i * per, 0), self._header + min(hi - i * per, per))
                for i in self.data_indexes(segment_length, lo, hi)}

    def join_slices(self, sent: Mapping[int, bytes], segment_length: int, lo: int,
                    hi: int) -> bytes:
        """Bytes [lo, hi) of a segment from the sliced reads of `data_slices`, each
        checked (check_slice); raises FragmentCorrupt(index) for the first bad one."""
        indexes = self.data_indexes(segment_length, lo, hi)
        return b"".join(check_slice(sent[i], i) for i in indexes)

    def framed_size(self, length: int) -> int:
        """Bytes of each framed fragment of a segment of `length` bytes."""
        if not 1 <= length <= self.segment_size:
            raise ValueError(f"a segment holds 1..{self.segment_size} bytes, not {length}")
        # One segment of exactly `length` bytes: pyeclib reports the fragment size that
        # encode() produces for it (it pads each fragment to its backend's alignment).
        info = self._driver.get_segment_info(length, length)
        return info["fragment_size"] + CRC_SIZE

    def layout(self, size: int) -> ArchiveLayout:
        """Segment and fragment-archive layout of an object (or part) of `size` bytes.

        Segments are cut here, not by pyeclib's get_segment_info, which would fold a
        short last segment into the one before it (so 2 MiB + 1 byte would be 2 segments,
        the second 1 MiB + 1 byte): our segments never exceed segment_size.
        """
        return ArchiveLayout.build(size, self.segment_size, self.framed_size)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.fragment_count:
            raise ValueError(f"fragment index {index} out of range 0..{self.fragment_count - 1}")

    def _unframe_all(self, fragments: Mapping[int, bytes],
                     seeds: Mapping[int, int] | None = None) -> list[bytes]:
        """Unframe every fragment, data indexes first (decode is cheapest from those)."""
        if len(fragments) < self.k:
            raise NotEnoughFragments(len(fragments), self.k)
        seeds = seeds or {}
        return [self.unframe(fragments[i], i, seeds.get(i, 0)) for i in sorted(fragments)]
