"""Decode `aws-chunked` request bodies, verifying chunk and trailer signatures on the way.

Follows the S3 API reference "Signature Calculations for the Authorization Header:
Transferring Payload in Multiple Chunks" (sigv4-streaming) and "... Including Trailing
Headers" (sigv4-streaming-trailers). The body is framed as

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<name>:<value>\\r\\n ...][x-amz-trailer-signature:<sig>\\r\\n]\\r\\n

`ChunkDecoder` is sans-IO (bytes in, payload pieces out); `AwsChunkedReader` drives it
from an async byte stream. Payload bytes are handed on as they arrive, before the chunk
they belong to is verified: the body is authentic only once iteration ends without error,
so a caller must not commit anything before that.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterable, AsyncIterator

from gateway.auth import canonical
from gateway.auth.context import (
    STREAMING_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    AuthContext,
)
from gateway.errors import S3Error

MAX_LINE = 4096  # a chunk header or trailer line, CRLF included
MAX_TRAILER_BYTES = 16384  # all trailer lines together
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX = frozenset(b"0123456789abcdefABCDEF")

_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _malformed(detail: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {detail}")


def _incomplete(detail: str = "") -> S3Error:
    return S3Error("IncompleteBody", detail) if detail else S3Error("IncompleteBody")


def stored_content_encoding(value: str | None) -> str | None:
    """Content-Encoding to keep on the object: the header minus `aws-chunked` (S3 drops it)."""
    if value is None:
        return None
    kept = [v.strip() for v in value.split(",") if v.strip() and v.strip() != "aws-chunked"]
    return ", ".join(kept) or None


class ChunkDecoder:
    """Sans-IO aws-chunked decoder: `feed` bytes in any split, `end` at end of stream.

    `signing_key` None means unsigned chunks (STREAMING-UNSIGNED-PAYLOAD-TRAILER); with a
    key, each chunk's signature chains from `seed_signature`, and with `signed_trailer`
    the trailer must carry x-amz-trailer-signature.
    """

    def __init__(self, *, signing_key: bytes | None, amz_date: str = "", scope: str = "",
                 seed_signature: str = "", trailer: bool = False, signed_trailer: bool = False,
                 decoded_content_length: int | None = None) -> None:
        self._key = signing_key
        self._prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n"
        self._trailer_prefix = f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n"
        self._previous = seed_signature
        self._trailer = trailer
        self._signed_trailer = signed_trailer and signing_key is not None
        self._expected_length = decoded_content_length
        self._state = _HEADER
        self._line = bytearray()
        self._remaining = 0
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._trailer_lines: list[tuple[str, str]] = []
        self._trailer_bytes = 0
        self.decoded_length = 0
        self.trailers: dict[str, str] = {}

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> list[bytes]:
        """Consume bytes; return the payload pieces they complete (slices of `data`)."""
        out: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size:
            if self._state == _DATA:
                take = min(self._remaining, size - pos)
                piece = data if take == size else data[pos:pos + take]
                if self._key is not None:
                    self._chunk_hash.update(piece)
                out.append(piece)
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._end_of_chunk_data()
            elif self._state == _DONE:
                if data[pos:].strip(b"\r\n"):
                    raise _malformed("data after the final chunk")
                pos = size
            else:
                room = MAX_LINE - len(self._line)
                newline = data.find(b"\n", pos, pos + room)
                if newline < 0:
                    if size - pos >= room:
                        raise _malformed("line too long")
                    self._line += data[pos:]
                    pos = size
                    continue
                self._line += data[pos:newline + 1]
                pos = newline + 1
                line = bytes(self._line)
                self._line.clear()
                if not line.endswith(b"\r\n"):
                    raise _malformed("lines must end with CRLF")
                self._on_line(line[:-2])
        return out

    def end(self) -> None:
        """The stream ended: raise IncompleteBody unless the body was complete."""
        if self._state == _TRAILER and not self._line:
            self._finish_trailer()  # tolerate a missing final empty line
        if self._state != _DONE:
            raise _incomplete()

    # --- framing ---------------------------------------------------------------------------

    def _on_line(self, line: bytes) -> None:
        if self._state == _HEADER:
            self._on_chunk_header(line)
        elif self._state == _DATA_END:
            if line:
                raise _malformed("chunk data longer than its declared size")
            self._state = _HEADER
        else:
            self._on_trailer_line(line)

    def _on_chunk_header(self, line: bytes) -> None:
        size_part, _, ext = line.partition(b";")
        size_part = size_part.strip()
        if not size_part or len(size_part) > 16 or not _HEX.issuperset(size_part):
            raise _malformed("bad chunk size")
        size = int(size_part, 16)
        if self._key is not None:
            name, _, value = ext.partition(b"=")
            value = value.strip()
            if name.strip() != b"chunk-signature" or len(value) != 64 or \
                    not _HEX.issuperset(value):
                raise _malformed("missing chunk-signature")
            self._chunk_signature = value.decode("ascii").lower()
        if self._expected_length is not None and \
                self.decoded_length + size > self._expected_length:
            raise _incomplete("The decoded body is longer than x-amz-decoded-content-length.")
        self.decoded_length += size
        if size:
            self._remaining = size
            self._chunk_hash = hashlib.sha256()
            self._state = _DATA
            return
        # the final, empty chunk
        if self._key is not None:
            self._check_chunk_signature(canonical.EMPTY_SHA256)
        if self._expected_length is not None and self.decoded_length != self._expected_length:
            raise _incomplete("The decoded body is shorter than x-amz-decoded-content-length.")
        self._state = _TRAILER

    def _end_of_chunk_data(self) -> None:
        if self._key is not None:
            self._check_chunk_signature(self._chunk_hash.hexdigest())
        self._state = _DATA_END

    def _check_chunk_signature(self, data_sha256: str) -> None:
        assert self._key is not None
        sts = f"{self._prefix}{self._previous}\n{canonical.EMPTY_SHA256}\n{data_sha256}"
        if not hmac.compare_digest(canonical.sign(self._key, sts), self._chunk_signature):
            raise S3Error("SignatureDoesNotMatch", "The chunk signature does not match.")
        self._previous = self._chunk_signature

    # --- trailer ---------------------------------------------------------------------------

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            # An empty line ends the body; in trailer mode one may also separate the final
            # chunk from the trailer (as in the AWS sigv4-streaming-trailers example).
            if not self._trailer or self._trailer_lines:
                self._finish_trailer()
            return
        if not self._trailer:
            raise _malformed("trailer sent without x-amz-trailer")
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER_BYTES:
            raise _malformed("trailer too large")
        name, colon, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise _malformed("bad trailer line")
        if any(name == seen for seen, _ in self._trailer_lines):
            raise _malformed(f"repeated trailer {name}")
        self._trailer_lines.append((name, value.strip()))

    def _finish_trailer(self) -> None:
        fields = [(n, v) for n, v in self._trailer_lines if n != TRAILER_SIGNATURE]
        if self._signed_trailer:
            provided = dict(self._trailer_lines).get(TRAILER_SIGNATURE, "").lower()
            if len(provided) != 64 or not _HEX.issuperset(provided.encode("latin-1")):
                raise S3Error("SignatureDoesNotMatch",
                              "The trailer signature is missing or malformed.")
            # Canonical trailer: "name:value\n" per header, in the order sent (sorted is
            # also accepted: signers that build it like canonical headers sort it).
            orders = [fields] + ([sorted(fields)] if sorted(fields) != fields else [])
            if not any(self._trailer_signature_matches(o, provided) for o in orders):
                raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match.")
        self.trailers = dict(fields)
        self._state = _DONE

    def _trailer_signature_matches(self, fields: list[tuple[str, str]], provided: str) -> bool:
        assert self._key is not None
        body = "".join(f"{n}:{v}\n" for n, v in fields).encode("latin-1")
        sts = f"{self._trailer_prefix}{self._previous}\n{hashlib.sha256(body).hexdigest()}"
        return hmac.compare_digest(canonical.sign(self._key, sts), provided)


class AwsChunkedReader:
    """Async iterator over the payload of an aws-chunked body, verified as it streams.

    `source` is the request body (already HTTP-dechunked), split anywhere. The chunk mode
    comes from `auth.payload_mode`. After iteration, `.trailers` holds the trailing headers
    (lowercase names, x-amz-trailer-signature removed) and `.decoded_length` the byte count.
    """

    def __init__(self, source: AsyncIterable[bytes], auth: AuthContext, *,
                 decoded_content_length: int | None = None) -> None:
        if auth.payload_mode not in STREAMING_MODES:
            raise ValueError(f"not an aws-chunked payload mode: {auth.payload_mode}")
        signed = auth.payload_mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        self._source = source
        self._decoder = ChunkDecoder(
            signing_key=auth.signing_key if signed else None, amz_date=auth.amz_date,
            scope=auth.scope, seed_signature=auth.seed_signature,
            trailer=auth.payload_mode in (STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER),
            signed_trailer=auth.payload_mode == STREAMING_SIGNED_TRAILER,
            decoded_content_length=decoded_content_length)

    @property
    def trailers(self) -> dict[str, str]:
        return self._decoder.trailers

    @property
    def decoded_length(self) -> int:
        return self._decoder.decoded_length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._source:
            if not isinstance(data, bytes):
                data = bytes(data)
            for piece in self._decoder.feed(data):
                yield piece
        self._decoder.end()
