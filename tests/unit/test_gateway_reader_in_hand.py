"""ObjectReader.body_in_hand: a body `prepare` already decoded whole, and small enough to
go out as one message, is handed over at once; anything longer streams."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gateway.objects.reader import SEND_PIECE, ObjectReader
from tests.unit.test_gateway_shared_reads import SEG, setup


def prepared(size: int, start: int, end: int) -> tuple[ObjectReader, bytes]:
    exchange, manifest, _, data, volumes, _ = setup(size)
    cluster = SimpleNamespace(segments=exchange, volumes=volumes,
                              codec_for=exchange.cluster.codec_for,
                              suspect=lambda vid: False, report_corrupt=lambda *a: None)
    reader = ObjectReader(cluster, manifest, start, end)  # type: ignore[arg-type]
    asyncio.run(reader.prepare())
    return reader, data


def streamed(reader: ObjectReader) -> bytes:
    async def main() -> bytes:
        return b"".join([chunk async for chunk in reader.stream()])
    return asyncio.run(main())


def test_a_body_within_one_decoded_segment_is_in_hand() -> None:
    reader, data = prepared(3 * SEG, 100, SEG - 1)
    assert reader.body_in_hand() == data[100:SEG]
    reader.close()


def test_a_body_over_two_segments_streams() -> None:
    reader, data = prepared(3 * SEG, 100, SEG + 99)
    assert reader.body_in_hand() is None
    assert streamed(reader) == data[100:SEG + 100]


def test_the_in_hand_bound_is_one_send_piece() -> None:
    assert SEG <= SEND_PIECE  # the small segments above fit: the bound is checked apart
    reader, data = prepared(SEG, 0, SEG - 1)
    whole = reader._first
    assert whole is not None and whole._ready == data
    whole._ready = bytes(SEND_PIECE + 1)  # as if a large segment had been decoded
    assert reader.body_in_hand() is None
    reader.close()
