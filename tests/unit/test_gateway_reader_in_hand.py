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


class FakeReader:
    """What ObjectResponse uses of a reader: a body in hand or a stream, and close."""

    def __init__(self, in_hand: bytes | None, chunks: list[bytes]) -> None:
        self.in_hand = in_hand
        self.chunks = chunks
        self.closed = 0

    def body_in_hand(self) -> bytes | None:
        return self.in_hand

    async def stream(self):  # noqa: ANN201 - an async generator
        for chunk in self.chunks:
            yield chunk

    def close(self) -> None:
        self.closed += 1


def sent_by(reader: FakeReader) -> list[dict]:
    """The ASGI messages an ObjectResponse sends, with a header set after it was made
    (as the app sets the request id)."""
    from gateway.get import ObjectResponse

    response = ObjectResponse(reader, 206, {"content-length": "5"})  # type: ignore[arg-type]
    response.headers["x-amz-request-id"] = "RID"
    messages: list[dict] = []

    async def receive() -> dict:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.1"}}
    asyncio.run(response(scope, receive, send))
    return messages


def test_a_body_in_hand_goes_out_as_head_and_one_body_message() -> None:
    reader = FakeReader(b"hello", [b"never", b"read"])
    messages = sent_by(reader)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert messages[0]["status"] == 206
    assert (b"x-amz-request-id", b"RID") in messages[0]["headers"]
    assert (b"content-length", b"5") in messages[0]["headers"]
    assert messages[1]["body"] == b"hello" and not messages[1].get("more_body", False)
    assert reader.closed == 1


def test_a_body_not_in_hand_streams_with_the_same_head() -> None:
    reader = FakeReader(None, [b"he", b"llo"])
    messages = sent_by(reader)
    assert messages[0]["type"] == "http.response.start"
    assert (b"x-amz-request-id", b"RID") in messages[0]["headers"]
    assert b"".join(m.get("body", b"") for m in messages[1:]) == b"hello"
    assert not messages[-1].get("more_body", False)
    assert reader.closed == 1
