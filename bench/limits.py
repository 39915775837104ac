"""Trivial apps under shardgate's own serving stack, to measure what one and two hops cost.

one hop   `python -m bench.limits store --port P`: S3-shaped; discards uploads, streams
          downloads from memory.
two hops  `python -m bench.limits forward --port P --backends URL,...` in front of six
          `python -m bench.limits fragments --port P`: the forwarder (aiohttp, like the
          gateway) cuts a PUT into 1 MiB segments and streams a quarter of each segment
          to every backend (the byte shape of a 4+2 erasure-coded write, with no encoding,
          hashing or fsync); a GET reads four backends and concatenates, segment by segment.

Every process is served by Hypercorn through `shardgate.serving`, as the gateway and the
volume servers are, with the same mmap-threshold tuning.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import aiohttp
from hypercorn.run import run as hypercorn_run

from bench.s3shape import (
    BLOCK,
    BLOCK_SIZE,
    HEALTH_PATH,
    Receive,
    S3Shape,
    Scope,
    Send,
    body_chunks,
    parse_range,
    pattern_pieces,
    respond,
    stream,
)
from shardgate.memory import tune_allocator
from shardgate.serving import hypercorn_config, run_app

SEGMENT_SIZE = BLOCK_SIZE  # the gateway's default segment size, 1 MiB
K, M = 4, 2
QUEUE_DEPTH = 4  # fragments buffered per backend, as in the gateway's writer
FULL_FRAGMENT = SEGMENT_SIZE // K
FULL_PIECES = [BLOCK[i * FULL_FRAGMENT:(i + 1) * FULL_FRAGMENT] for i in range(K)]


def fragment_size(segment_length: int) -> int:
    return -(-segment_length // K)


class Store(S3Shape):
    """One hop: uploads are read and dropped; downloads come from a block in memory."""

    async def store(self, name: str, body: AsyncIterator[bytes]) -> int:
        size = 0
        async for chunk in body:
            size += len(chunk)
        return size

    async def read(self, name: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        for piece in pattern_pieces(start, end):
            yield piece


def archive_pieces(index: int, part_size: int, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end] of fragment archive `index` of a part of `part_size` bytes.

    Fragment i of a segment holds the segment's i-th quarter, so four archives read
    side by side concatenate to the pattern `Store` serves (parity repeats data).
    """
    full, tail = divmod(part_size, SEGMENT_SIZE)
    tail_size = fragment_size(tail)
    data = index % K
    tail_piece = BLOCK[data * tail_size:(data + 1) * tail_size]
    pos = start
    while pos <= end:
        segment = pos // FULL_FRAGMENT
        if segment < full:
            piece, base = FULL_PIECES[data], segment * FULL_FRAGMENT
        else:
            piece, base = tail_piece, full * FULL_FRAGMENT
        offset = pos - base
        n = min(len(piece) - offset, end + 1 - pos)
        if n <= 0:
            return
        yield piece if n == len(piece) else piece[offset:offset + n]
        pos += n


class Fragments:
    """A trivial volume server: PUT drains a fragment stream, GET serves an archive range."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                if (await receive())["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
                await send({"type": "lifespan.startup.complete"})
        if scope["type"] != "http":
            return
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == HEALTH_PATH:
            await respond(send, 200, body=b"ok")
        elif scope["method"] == "PUT":
            size = 0
            async for chunk in body_chunks(receive):
                size += len(chunk)
            await respond(send, 200, {"content-type": "application/json"},
                          f'{{"size": {size}}}'.encode())
        else:
            index, size = int(query.get("index", "0")), int(query.get("size", "0"))
            full, tail = divmod(size, SEGMENT_SIZE)
            archive_size = full * FULL_FRAGMENT + fragment_size(tail)
            span = parse_range(headers.get("range", ""), archive_size) or (0, archive_size - 1)
            await stream(send, 206, {"content-length": str(span[1] - span[0] + 1)},
                         archive_pieces(index, size, *span))


class Forwarder(S3Shape):
    """Two hops: each part becomes K+M fragment streams to the backends, read back from K."""

    def __init__(self, backends: list[str]) -> None:
        super().__init__()
        if len(backends) != K + M:
            raise ValueError(f"the forwarder needs {K + M} backends, got {len(backends)}")
        self.backends = [b.rstrip("/") for b in backends]
        self.session: aiohttp.ClientSession | None = None

    async def startup(self) -> None:
        # no per-backend limit: a GET holds K backends at once, and a capped pool shared by
        # more concurrent GETs than the cap can deadlock (each holding some, waiting for more)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=None, connect=3, sock_connect=3, sock_read=30)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                             auto_decompress=False)

    async def shutdown(self) -> None:
        if self.session:
            await self.session.close()

    async def store(self, name: str, body: AsyncIterator[bytes]) -> int:
        assert self.session is not None
        session = self.session
        queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(QUEUE_DEPTH)
                                                     for _ in self.backends]

        async def lane_body(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
            while (item := await queue.get()) is not None:
                yield item

        async def lane(i: int) -> None:
            url = f"{self.backends[i]}/frag/{name}.{i}"
            async with session.put(url, data=lane_body(queues[i])) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")

        async def push(segment: bytes) -> None:
            size = fragment_size(len(segment))
            view = memoryview(segment)
            fragments = [bytes(view[i * size:(i + 1) * size]) for i in range(K)]
            fragments += fragments[:M]  # stand-ins for parity: the bytes, not the maths
            for queue, task, fragment in zip(queues, tasks, fragments, strict=True):
                if task.done():
                    raise RuntimeError("a backend failed during the upload")
                await queue.put(fragment)

        def drain(queue: asyncio.Queue[bytes | None], _: asyncio.Task) -> None:
            while not queue.empty():  # unblock the producer when a lane ends early
                queue.get_nowait()

        tasks = [asyncio.create_task(lane(i)) for i in range(len(self.backends))]
        for task, queue in zip(tasks, queues, strict=True):
            task.add_done_callback(functools.partial(drain, queue))
        total = 0
        buffer = bytearray()
        try:
            async for chunk in body:
                total += len(chunk)
                buffer += chunk
                while len(buffer) >= SEGMENT_SIZE:
                    segment = bytes(buffer[:SEGMENT_SIZE])
                    del buffer[:SEGMENT_SIZE]
                    await push(segment)
            if buffer:
                await push(bytes(buffer))
            for queue in queues:
                await queue.put(None)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return total

    async def read(self, name: str, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        assert self.session is not None
        full, tail = divmod(size, SEGMENT_SIZE)
        first, last = start // SEGMENT_SIZE, end // SEGMENT_SIZE
        last_fragment = FULL_FRAGMENT if last < full else fragment_size(tail)
        span = f"bytes={first * FULL_FRAGMENT}-{last * FULL_FRAGMENT + last_fragment - 1}"
        opened = await asyncio.gather(*(
            self.session.get(f"{self.backends[i]}/frag/{name}.{i}",
                             params={"index": str(i), "size": str(size)},
                             headers={"Range": span}) for i in range(K)),
            return_exceptions=True)
        responses = [r for r in opened if isinstance(r, aiohttp.ClientResponse)]
        try:
            if len(responses) < K:
                raise RuntimeError(f"a backend failed: {opened!r}"[:300])
            for segment in range(first, last + 1):
                length = SEGMENT_SIZE if segment < full else tail
                pieces = await asyncio.gather(*(r.content.readexactly(fragment_size(length))
                                                for r in responses))
                data = b"".join(pieces)
                offset = segment * SEGMENT_SIZE
                lo, hi = max(start, offset) - offset, min(end + 1, offset + length) - offset
                yield data if (lo == 0 and hi == len(data)) else data[lo:hi]
        finally:
            for r in responses:
                r.release()


BACKENDS_ENV = "BENCH_BACKENDS"  # the forwarder's backends, for a server that imports it


def store_app() -> Store:
    """The apps for a server that imports them by name (Granian's --factory)."""
    tune_allocator()
    return Store()


def fragments_app() -> Fragments:
    tune_allocator()
    return Fragments()


def forward_app() -> Forwarder:
    tune_allocator()
    return Forwarder([b for b in os.environ[BACKENDS_ENV].split(",") if b])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["store", "forward", "fragments"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backends", default="", help="comma-separated URLs (forward)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (Hypercorn's, as the gateway runs them)")
    args = parser.parse_args(argv)
    if args.workers > 1:
        os.environ[BACKENDS_ENV] = args.backends
        factory = {"store": "store_app", "forward": "forward_app",
                   "fragments": "fragments_app"}[args.role]
        config = hypercorn_config("127.0.0.1", args.port)
        config.workers = args.workers
        config.application_path = f"bench.limits:{factory}()"
        hypercorn_run(config)
        return
    tune_allocator()
    app: S3Shape | Fragments
    if args.role == "store":
        app = Store()
    elif args.role == "forward":
        app = Forwarder([b for b in args.backends.split(",") if b])
    else:
        app = Fragments()
    run_app(app, hypercorn_config("127.0.0.1", args.port))


if __name__ == "__main__":
    main()
