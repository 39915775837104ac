"""The slice of the S3 REST API that boto3 and curl use in the bench, as a bare ASGI base.

No authentication, no persistence: a subclass decides where uploaded bytes go (`store`)
and where downloaded bytes come from (`read`). Every object reads back as the same
deterministic pattern (a 1 MiB block repeated), so any process can serve its bytes and
compute the CRC that GetObject returns when boto3 asks for checksum validation, which
keeps the client's work identical to what it does against shardgate.
"""

from __future__ import annotations

import base64
import bisect
import random
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from awscrt import checksums as crt

from bench.catalog import StoredObject, catalog

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BLOCK_SIZE = 1 << 20
BLOCK = random.Random(20240601).randbytes(BLOCK_SIZE)  # the same in every process
HEALTH_PATH = "/-/health"

_CRC = {"crc32": (zlib.crc32, crt.combine_crc32, 4),
        "crc32c": (crt.crc32c, crt.combine_crc32c, 4),
        "crc64nvme": (crt.crc64nvme, crt.combine_crc64nvme, 8)}


def pattern_pieces(start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end] (inclusive) of the pattern; whole blocks are never copied."""
    pos = start
    while pos <= end:
        offset = pos % BLOCK_SIZE
        n = min(BLOCK_SIZE - offset, end + 1 - pos)
        yield BLOCK if n == BLOCK_SIZE else BLOCK[offset:offset + n]
        pos += n


def pattern_checksum(algorithm: str, size: int) -> str:
    """Base64 CRC of the first `size` bytes of the pattern, combined block by block."""
    compute, combine, width = _CRC[algorithm]
    block_crc = compute(BLOCK, 0)
    crc = 0
    for _ in range(size // BLOCK_SIZE):
        crc = combine(crc, block_crc, BLOCK_SIZE)
    tail = size % BLOCK_SIZE
    if tail:
        crc = combine(crc, compute(BLOCK[:tail], 0), tail)
    return base64.b64encode(crc.to_bytes(width, "big")).decode("ascii")


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clipped; None if unusable."""
    if not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if first:
            start, end = int(first), (int(last) if last else size - 1)
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return None
    end = min(end, size - 1)
    return (start, end) if start <= end else None


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (raises ConnectionError if the client leaves)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def respond(send: Send, status: int, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if status != 204:
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def stream(send: Send, status: int, headers: dict[str, str],
                 pieces: AsyncIterator[bytes] | Iterator[bytes]) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    if isinstance(pieces, Iterator):
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    else:
        async for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _xml(root: str, **fields: str) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><{root} '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</{root}>').encode()


def _requested_crc(headers: dict[str, str]) -> str | None:
    for algorithm in _CRC:
        if f"x-amz-checksum-{algorithm}" in headers:
            return algorithm
    sdk = headers.get("x-amz-sdk-checksum-algorithm", "").lower()
    return sdk if sdk in _CRC else None


class S3Shape:
    """PUT/GET/HEAD objects, multipart uploads, buckets (accepted, never checked)."""

    def __init__(self) -> None:
        self.catalog = catalog()  # shared by the workers, when there are several

    async def store(self, name: str, body: AsyncIterator[bytes]) -> int:
        """Consume an uploaded body under `name`; return its size."""
        raise NotImplementedError

    def read(self, name: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end] of the part stored as `name` (`size` bytes)."""
        raise NotImplementedError

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = unquote(scope["path"])
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode(),
                                                keep_blank_values=True).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = path.lstrip("/").partition("/")[2]
        if path == HEALTH_PATH:
            await respond(send, 200, body=b"ok")
        elif method == "PUT" and key:
            await self._put(key, query, headers, receive, send)
        elif method == "POST" and "uploads" in query:
            upload_id = uuid.uuid4().hex
            await respond(send, 200, {"content-type": "application/xml"},
                          _xml("InitiateMultipartUploadResult", Key=key, UploadId=upload_id))
        elif method == "POST" and "uploadId" in query:
            async for _ in body_chunks(receive):
                pass
            parts = self.catalog.take_parts(query["uploadId"])
            self.catalog.put(key, StoredObject(parts, None))
            await respond(send, 200, {"content-type": "application/xml"},
                          _xml("CompleteMultipartUploadResult", Key=key,
                               ETag=f'"bench-{len(parts)}"'))
        elif method == "GET" and not key and query.get("list-type") == "2":
            await respond(send, 200, {"content-type": "application/xml"}, self._list(query))
        elif method in ("GET", "HEAD") and key:
            await self._get(method, key, headers, send)
        elif method == "DELETE":
            self.catalog.take_parts(query.get("uploadId", ""))
            self.catalog.delete(key)
            await respond(send, 204)
        else:  # CreateBucket, HeadBucket and anything else the bench does not measure
            async for _ in body_chunks(receive):
                pass
            await respond(send, 200)

    async def _put(self, key: str, query: dict[str, str], headers: dict[str, str],
                   receive: Receive, send: Send) -> None:
        name = uuid.uuid4().hex
        size = await self.store(name, body_chunks(receive))
        if "uploadId" in query and "partNumber" in query:
            self.catalog.add_part(query["uploadId"], int(query["partNumber"]), name, size)
        else:
            self.catalog.put(key, StoredObject([(name, size)], _requested_crc(headers)))
        await respond(send, 200, {"etag": f'"{name}"'})

    def _list(self, query: dict[str, str]) -> bytes:
        """ListObjectsV2 from memory: prefix, delimiter, max-keys, continuation-token (the
        last key or prefix returned). Buckets are not told apart."""
        keys = self.catalog.sorted_keys()
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        max_keys = int(query.get("max-keys", "1000"))
        after = query.get("continuation-token") or query.get("start-after", "")
        if after and delimiter and after.endswith(delimiter):  # past a common prefix
            i = bisect.bisect_left(keys, after + "\U0010ffff")
        elif after:
            i = bisect.bisect_right(keys, after)
        else:
            i = bisect.bisect_left(keys, prefix)
        contents: list[str] = []
        prefixes: list[str] = []
        last = ""
        while i < len(keys) and keys[i].startswith(prefix):
            if len(contents) + len(prefixes) == max_keys:
                break
            k = keys[i]
            cut = k.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = k[:cut + len(delimiter)]
                prefixes.append(common)
                last = common
                i = bisect.bisect_left(keys, common + "\U0010ffff")  # skip the rest of it
                continue
            contents.append(k)
            last = k
            i += 1
        truncated = i < len(keys) and keys[i].startswith(prefix)
        body = "".join(
            f"<Contents><Key>{escape(k)}</Key><Size>{self.catalog.size(k)}</Size>"
            '<ETag>"bench"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified>'
            "<StorageClass>STANDARD</StorageClass></Contents>" for k in contents)
        body += "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
                        for p in prefixes)
        token = (f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
                 if truncated else "")
        return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name>'
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(contents) + len(prefixes)}"
                f"</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
                f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{token}{body}"
                "</ListBucketResult>").encode()

    async def _get(self, method: str, key: str, headers: dict[str, str], send: Send) -> None:
        obj = self.catalog.get(key)
        if obj is None:
            await respond(send, 404, {"content-type": "application/xml"},
                          _xml("Error", Code="NoSuchKey"))
            return
        size = obj.size
        out = {"etag": '"bench"', "accept-ranges": "bytes",
               "last-modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        span = parse_range(headers["range"], size) if "range" in headers else None
        status, (start, end) = (206, span) if span else (200, (0, size - 1))
        if span:
            out["content-range"] = f"bytes {start}-{end}/{size}"
        elif obj.checksum and headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            out[f"x-amz-checksum-{obj.checksum}"] = pattern_checksum(obj.checksum, size)
        out["content-length"] = str(end - start + 1)
        if method == "HEAD" or size == 0:
            await stream(send, status, out, iter(()))
            return
        await stream(send, status, out, self._pieces(obj, start, end))

    async def _pieces(self, obj: StoredObject, start: int, end: int) -> AsyncIterator[bytes]:
        offset = 0
        for name, size in obj.parts:
            lo, hi = max(start, offset), min(end, offset + size - 1)
            if lo <= hi:
                async for piece in self.read(name, size, lo - offset, hi - offset):
                    yield piece
            offset += size
