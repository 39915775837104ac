"""aws-chunked decoding: AWS's published examples, botocore's encoder, tampering, truncation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import random
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, CrtCrc64NvmeChecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import checksums
from gateway.auth import canonical
from gateway.auth.payload import PlainReader, Sha256Reader, body_reader
from gateway.auth.sigv4 import (
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    STREAMING_UNSIGNED_TRAILER,
    AuthContext,
    authenticate,
)
from gateway.auth.streaming import MAX_LINE, AwsChunkedReader, stored_content_encoding
from gateway.errors import S3Error

# S3 API reference, sigv4-streaming "Example: PUT Object" and sigv4-streaming-trailers.
DOC_AK = "AKIAIOSFODNN7EXAMPLE"
DOC_SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)
DOC_DATA = b"a" * 66560
DOC_HEADERS = {
    "host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
    "x-amz-storage-class": "REDUCED_REDUNDANCY", "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": "66560",
}
SIGNED_EXAMPLE = {
    **DOC_HEADERS, "content-length": "66824",
    "x-amz-content-sha256": STREAMING_SIGNED,
    "authorization": f"AWS4-HMAC-SHA256 Credential={DOC_AK}/20130524/us-east-1/s3/"
    "aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;"
    "x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
    "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
}
SIGNED_BODY = (
    b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
    + DOC_DATA[:65536] + b"\r\n"
    b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
    + DOC_DATA[65536:] + b"\r\n"
    b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n"
    b"\r\n"
)
TRAILER_EXAMPLE = {
    **DOC_HEADERS, "x-amz-content-sha256": STREAMING_SIGNED_TRAILER,
    "x-amz-trailer": "x-amz-checksum-crc32c",
    "authorization": f"AWS4-HMAC-SHA256 Credential={DOC_AK}/20130524/us-east-1/s3/"
    "aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,"
    "Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
}
TRAILER_CHUNKS = (
    b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
    + DOC_DATA[:65536] + b"\r\n"
    b"400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n"
    + DOC_DATA[65536:] + b"\r\n"
    b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
)
TRAILER_LINES = (
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
    b"\r\n"
)


def doc_context(headers: dict[str, str]) -> AuthContext:
    ctx = authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers,
                       {DOC_AK: DOC_SK}.get, "us-east-1", DOC_TIME)
    assert ctx is not None
    return ctx


def split(body: bytes, rng: random.Random, max_piece: int = 9000) -> list[bytes]:
    pieces, pos = [], 0
    while pos < len(body):
        n = rng.randint(1, max_piece)
        pieces.append(body[pos:pos + n])
        pos += n
    return pieces


async def _source(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def decode(pieces: Iterable[bytes], ctx: AuthContext, **kwargs) -> tuple[bytes, AwsChunkedReader]:
    reader = AwsChunkedReader(_source(pieces), ctx, **kwargs)

    async def run() -> bytes:
        return b"".join([piece async for piece in reader])

    return asyncio.run(run()), reader


def decode_error(pieces: Iterable[bytes], ctx: AuthContext, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as err:
        decode(pieces, ctx, **kwargs)
    return err.value


# --- AWS published examples ----------------------------------------------------------------


def test_aws_signed_example_seed_and_chunks() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    assert ctx.seed_signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    data, reader = decode([SIGNED_BODY], ctx, decoded_content_length=66560)
    assert data == DOC_DATA
    assert reader.trailers == {} and reader.decoded_length == 66560


@pytest.mark.parametrize("size", [1, 2, 7, 89, 4096, 65536, 65537, 70000])
def test_aws_signed_example_fixed_splits(size: int) -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    pieces = [SIGNED_BODY[i:i + size] for i in range(0, len(SIGNED_BODY), size)]
    assert decode(pieces, ctx, decoded_content_length=66560)[0] == DOC_DATA


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), max_piece=st.sampled_from([3, 100, 5000, 70000]))
def test_aws_signed_example_random_splits(seed: int, max_piece: int) -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    pieces = split(SIGNED_BODY, random.Random(seed), max_piece)
    assert decode(pieces, ctx)[0] == DOC_DATA


@pytest.mark.parametrize("separator", [b"", b"\r\n"])
def test_aws_signed_trailer_example(separator: bytes) -> None:
    # The documentation shows an empty line between the final chunk and the trailer; SDKs
    # send none. Both decode.
    ctx = doc_context(TRAILER_EXAMPLE)
    assert ctx.seed_signature.startswith("106e2a8a")
    body = TRAILER_CHUNKS + separator + TRAILER_LINES
    data, reader = decode(split(body, random.Random(7), 3000), ctx)
    assert data == DOC_DATA
    assert reader.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    assert checksums.checksum_of(data, "CRC32C") == "sOO8/Q=="


def test_aws_signed_trailer_example_tampered_trailer() -> None:
    ctx = doc_context(TRAILER_EXAMPLE)
    body = TRAILER_CHUNKS + TRAILER_LINES.replace(b"sOO8/Q==", b"sOO8/A==")
    assert decode_error([body], ctx).code == "SignatureDoesNotMatch"
    no_sig = TRAILER_CHUNKS + b"x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"
    assert decode_error([no_sig], ctx).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("offset", [100, 65535, 65800, 66700])
def test_tampered_chunk_data(offset: int) -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    body = bytearray(SIGNED_BODY)
    body[offset] ^= 0x01
    assert decode_error([bytes(body)], ctx).code == "SignatureDoesNotMatch"


def test_reordered_or_forged_chunk_signatures() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    forged = SIGNED_BODY.replace(b"b6c6ea8a5354", b"b6c6ea8a5355")
    assert decode_error([forged], ctx).code == "SignatureDoesNotMatch"
    other_seed = AuthContext(ctx.access_key, ctx.signing_key, ctx.scope, ctx.amz_date,
                             "0" * 64, ctx.payload_mode)
    assert decode_error([SIGNED_BODY], other_seed).code == "SignatureDoesNotMatch"


def test_truncated_body_is_incomplete() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    final_header_end = SIGNED_BODY.index(b"0;chunk-signature=b6c6")
    for cut in [0, 1, 50, 90, 91, 65536, 65626, 65629, 66700, final_header_end + 10]:
        err = decode_error([SIGNED_BODY[:cut]], ctx)
        assert err.code == "IncompleteBody", cut


def test_decoded_content_length_mismatch() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    assert decode_error([SIGNED_BODY], ctx, decoded_content_length=66559).code == \
        "IncompleteBody"
    assert decode_error([SIGNED_BODY], ctx, decoded_content_length=66561).code == \
        "IncompleteBody"


def test_garbage_and_overlong_lines() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    assert decode_error([SIGNED_BODY + b"junk"], ctx).code == "InvalidRequest"
    assert decode_error([b"1" * (MAX_LINE + 10)], ctx).code == "InvalidRequest"
    assert decode_error([b"zz;chunk-signature=" + b"0" * 64 + b"\r\n"], ctx).code == \
        "InvalidRequest"
    assert decode_error([b"10\r\n"], ctx).code == "InvalidRequest"  # signature required


# --- unsigned chunks with trailing checksums -----------------------------------------------


def unsigned_ctx() -> AuthContext:
    return AuthContext(DOC_AK, b"k" * 32, "20130524/us-east-1/s3/aws4_request",
                       "20130524T000000Z", "f" * 64, STREAMING_UNSIGNED_TRAILER)


def unsigned_body(data: bytes, chunk: int, trailer: str) -> bytes:
    out = bytearray()
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return bytes(out) + b"0\r\n" + trailer.encode() + b"\r\n\r\n"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "CRC32C", "SHA256"])
def test_unsigned_trailer_by_hand(algorithm: str) -> None:
    data = random.Random(1).randbytes(300_001)
    name = checksums.header_name(algorithm)
    body = unsigned_body(data, 65536, f"{name}:{checksums.checksum_of(data, algorithm)}")
    out, reader = decode(split(body, random.Random(2), 20000), unsigned_ctx(),
                         decoded_content_length=len(data))
    assert out == data
    assert checksums.trailer_checksum(reader.trailers, algorithm) == \
        checksums.checksum_of(data, algorithm)


@pytest.mark.parametrize(("cls", "name"), [(Crc32Checksum, "x-amz-checksum-crc32"),
                                           (CrtCrc64NvmeChecksum, "x-amz-checksum-crc64nvme")])
def test_botocore_aws_chunked_encoder(cls, name: str) -> None:
    data = random.Random(3).randbytes(1_000_003)
    wrapper = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=cls, checksum_name=name,
                                chunk_size=256 * 1024)
    body = wrapper.read()
    out, reader = decode(split(body, random.Random(4), 70000), unsigned_ctx())
    assert out == data
    algorithm = name.removeprefix("x-amz-checksum-").upper()
    assert reader.trailers[name] == checksums.checksum_of(data, algorithm)


def test_unsigned_trailer_without_trailer_or_final_crlf() -> None:
    data, reader = decode([b"3\r\nabc\r\n0\r\n\r\n"], unsigned_ctx())
    assert data == b"abc" and reader.trailers == {}
    data, reader = decode([b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n"],
                          unsigned_ctx())
    assert reader.trailers == {"x-amz-checksum-crc32": "NSRBwg=="}


def test_unsigned_truncated() -> None:
    assert decode_error([b"3\r\nab"], unsigned_ctx()).code == "IncompleteBody"
    assert decode_error([b"3\r\nabc\r\n"], unsigned_ctx()).code == "IncompleteBody"


def test_trailer_size_capped() -> None:
    body = b"0\r\n" + b"".join(b"x-amz-meta-%d:%s\r\n" % (i, b"v" * 900) for i in range(40))
    assert decode_error([body + b"\r\n"], unsigned_ctx()).code == "InvalidRequest"


# --- signed chunks with a signed trailer, built by an independent signer --------------------


def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def signed_body(ctx: AuthContext, chunks: list[bytes], trailers: list[tuple[str, str]]) -> bytes:
    prev, out = ctx.seed_signature, bytearray()
    empty = hashlib.sha256(b"").hexdigest()
    for data in [*chunks, b""]:
        sts = (f"AWS4-HMAC-SHA256-PAYLOAD\n{ctx.amz_date}\n{ctx.scope}\n{prev}\n{empty}\n"
               f"{hashlib.sha256(data).hexdigest()}")
        prev = _hmac_hex(ctx.signing_key, sts)
        out += b"%x;chunk-signature=%s\r\n" % (len(data), prev.encode()) + data
        out += b"\r\n" if data else b""
    canon = "".join(f"{n}:{v}\n" for n, v in trailers).encode()
    sts = (f"AWS4-HMAC-SHA256-TRAILER\n{ctx.amz_date}\n{ctx.scope}\n{prev}\n"
           f"{hashlib.sha256(canon).hexdigest()}")
    for n, v in trailers:
        out += f"{n}:{v}\r\n".encode()
    out += f"x-amz-trailer-signature:{_hmac_hex(ctx.signing_key, sts)}\r\n\r\n".encode()
    return bytes(out)


def signed_trailer_ctx() -> AuthContext:
    key = canonical.signing_key("secret", "20260101", "eu-west-1", "s3")
    return AuthContext("AK", key, "20260101/eu-west-1/s3/aws4_request", "20260101T120000Z",
                       "1" * 64, STREAMING_SIGNED_TRAILER)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 70000), min_size=0, max_size=6), seed=st.integers(0, 999))
def test_signed_chunks_with_signed_trailer(sizes: list[int], seed: int) -> None:
    rng = random.Random(seed)
    chunks = [rng.randbytes(n) for n in sizes]
    data = b"".join(chunks)
    crc = checksums.checksum_of(data, "CRC64NVME")
    ctx = signed_trailer_ctx()
    body = signed_body(ctx, chunks, [("x-amz-checksum-crc64nvme", crc)])
    out, reader = decode(split(body, rng, 9000), ctx, decoded_content_length=len(data))
    assert out == data
    assert reader.trailers == {"x-amz-checksum-crc64nvme": crc}


def test_large_chunks_pass_through_without_copies() -> None:
    ctx = signed_trailer_ctx()
    rng = random.Random(5)
    chunks = [rng.randbytes(8 * 1024 * 1024), rng.randbytes(3 * 1024 * 1024 + 17)]
    body = signed_body(ctx, chunks, [("x-amz-checksum-crc32", "AAAAAA==")])
    pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    reader = AwsChunkedReader(_source(pieces), ctx)

    originals = {id(p) for p in pieces}  # `pieces` keeps them alive, so ids stay unique

    async def run() -> tuple[int, int]:
        same = total = 0
        async for piece in reader:
            total += 1
            same += id(piece) in originals
        return same, total

    same, total = asyncio.run(run())
    assert total >= 170 and same >= total - 4  # only pieces at chunk boundaries are sliced


# --- payload readers -----------------------------------------------------------------------


def run_reader(reader) -> bytes:
    async def run() -> bytes:
        return b"".join([piece async for piece in reader])
    return asyncio.run(run())


def test_sha256_reader() -> None:
    data = b"hello world" * 1000
    good = hashlib.sha256(data).hexdigest()
    assert run_reader(Sha256Reader(_source([data[:7], data[7:]]), good.upper())) == data
    with pytest.raises(S3Error) as err:
        run_reader(Sha256Reader(_source([data, b"!"]), good))
    assert err.value.code == "XAmzContentSHA256Mismatch"


def test_body_reader_dispatch() -> None:
    ctx = doc_context(SIGNED_EXAMPLE)
    reader = body_reader(_source([SIGNED_BODY]), ctx, SIGNED_EXAMPLE)
    assert isinstance(reader, AwsChunkedReader) and run_reader(reader) == DOC_DATA
    bad = body_reader(_source([SIGNED_BODY]), ctx,
                      {**SIGNED_EXAMPLE, "x-amz-decoded-content-length": "5"})
    with pytest.raises(S3Error):
        run_reader(bad)
    assert isinstance(body_reader(_source([]), None, {}), PlainReader)
    sha = AuthContext("a", b"k", "s", "d", "x", "SHA256", hashlib.sha256(b"x").hexdigest())
    assert run_reader(body_reader(_source([b"x"]), sha, {})) == b"x"
    # anonymous SDK uploads still arrive aws-chunked with a trailing checksum
    anon = body_reader(_source([b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"]),
                       None, {"x-amz-content-sha256": STREAMING_UNSIGNED_TRAILER})
    assert run_reader(anon) == b"abc" and anon.trailers["x-amz-checksum-crc32"] == "NSRBwg=="


def test_stored_content_encoding() -> None:
    assert stored_content_encoding("aws-chunked") is None
    assert stored_content_encoding("aws-chunked, gzip") == "gzip"
    assert stored_content_encoding(None) is None
