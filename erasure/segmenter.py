"""Cut a streamed body into segments of exactly segment_size bytes (the last may be shorter).

Pure and push-driven, like a sans-IO parser: feed it chunks as they arrive, whatever
their sizes, and it hands back each segment as soon as it is complete, so a writer
holds at most one partial segment besides the chunk in hand.
"""

from __future__ import annotations


class Segmenter:
    """Accumulates chunks; every byte is copied at most twice (into the buffer, out of it)."""

    def __init__(self, segment_size: int) -> None:
        if segment_size < 1:
            raise ValueError(f"segment_size must be >= 1, not {segment_size}")
        self.segment_size = segment_size
        self._partial = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back, waiting for the rest of their segment."""
        return len(self._partial)

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """Add `chunk`; return every segment completed by it, in order (often none)."""
        size = self.segment_size
        view = memoryview(chunk).cast("B")
        segments: list[bytes] = []
        pos = 0
        if self._partial:
            # Top up the partial segment first; it completes at most once per chunk.
            pos = min(size - len(self._partial), len(view))
            self._partial += view[:pos]
            if len(self._partial) < size:
                return segments
            segments.append(bytes(self._partial))
            self._partial.clear()
        # Whole segments straight out of the chunk, without passing through the buffer.
        while len(view) - pos >= size:
            if pos == 0 and len(view) == size and type(chunk) is bytes:
                segments.append(chunk)  # the chunk is exactly one segment: no copy at all
            else:
                segments.append(bytes(view[pos:pos + size]))
            pos += size
        self._partial += view[pos:]
        return segments

    def finish(self) -> bytes | None:
        """The last, partial segment (None when the body ended on a boundary or was empty).

        The Segmenter is empty again afterwards and may cut another body.
        """
        if not self._partial:
            return None
        tail = bytes(self._partial)
        self._partial.clear()
        return tail
