"""The fast load generator: awscrt's S3 client (C threads, SigV4 in C) keeping N in flight.

Python does no per-byte work: downloads go to `recv_filepath` (/dev/null, or a file for a
spot check) and are counted by `on_progress`; uploads come from `send_filepath`. Measured:
an `on_body` callback costs about three times the CPU of /dev/null. Either way CRT holds a
single-request GET's whole body in memory until it ends, so many concurrent big GETs are
not for this client (bench/aio.py does those).

Every request is made with type DEFAULT (one HTTP request each, exactly as built here:
CRT neither splits it into parts nor adds a Range or checksum), except `multipart_put`,
which is CRT's own multipart upload. Retries are off, so a 503 is seen, not hidden.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from awscrt import auth, http, io, s3

REGION = "us-east-1"
CLIENT_LABEL = "crt"


@dataclass
class Outcome:
    """One finished request: what came back and when."""

    status: int = 0
    nbytes: int = 0  # body bytes received (GET) or sent (PUT)
    content_length: int | None = None
    etag: str = ""
    start: float = 0.0  # perf_counter when issued (or scheduled, for open loop)
    end: float = 0.0
    error: str | None = None
    body_path: str | None = None  # where a spot-checked body was written
    body: bytes = b""  # a kept body (get_body)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Batch:
    """The outcomes of a phase and its wall time."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]

    def bytes(self) -> int:
        return sum(o.nbytes for o in self.outcomes if not o.error)


class Crt:
    """One awscrt S3Client bound to an endpoint (plain http, path-style)."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str,
                 max_connections: int = 160, threads: int = 2) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "http":
            raise ValueError("the CRT generator drives plain http endpoints only")
        self.host = parts.netloc
        self.elg = io.EventLoopGroup(threads)
        bootstrap = io.ClientBootstrap(self.elg, io.DefaultHostResolver(self.elg))
        creds = auth.AwsCredentialsProvider.new_static(access_key, secret_key)
        signing = s3.create_default_s3_signing_config(region=REGION, credential_provider=creds)
        self.client = s3.S3Client(
            bootstrap=bootstrap, region=REGION, tls_mode=s3.S3RequestTlsMode.DISABLED,
            signing_config=signing, throughput_target_gbps=100.0,
            max_active_connections_override=max_connections,
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE))

    def _request(self, method: str, path: str, headers: Iterable[tuple[str, str]] = ()
                 ) -> http.HttpRequest:
        return http.HttpRequest(method, quote(path, safe="/?=&-_.~%"),
                                http.HttpHeaders([("Host", self.host), *headers]))

    def _issue(self, make: Callable[..., s3.S3Request], outcome: Outcome,
               body: list[bytes] | None = None, **kwargs: object) -> Future[Outcome]:
        done: Future[Outcome] = Future()

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: object) -> None:
            outcome.status = status_code
            for name, value in headers:
                lname = name.lower()
                if lname == "content-length":
                    outcome.content_length = int(value)
                elif lname == "etag":
                    outcome.etag = value

        def on_progress(progress: int, **_: object) -> None:
            outcome.nbytes += progress

        def on_body(chunk: bytes, offset: int, **_: object) -> None:
            assert body is not None
            body.append(bytes(chunk))
            outcome.nbytes += len(chunk)

        def on_done(error: BaseException | None = None, error_headers: object = None,
                    error_body: bytes | None = None, status_code: int | None = None,
                    **_: object) -> None:
            outcome.end = time.perf_counter()
            if status_code:
                outcome.status = status_code
            if error is not None:
                outcome.error = f"HTTP {outcome.status}: {error}"[:300]
            done.set_result(outcome)

        if body is not None:
            kwargs["on_body"] = on_body
        else:
            kwargs["on_progress"] = on_progress
        if not outcome.start:
            outcome.start = time.perf_counter()
        make(on_headers=on_headers, on_done=on_done, **kwargs)
        return done

    def get(self, path: str, headers: Iterable[tuple[str, str]] = (),
            to_file: str = os.devnull, start_at: float = 0.0) -> Future[Outcome]:
        """One GET; the body goes to `to_file` (/dev/null: only counted)."""
        outcome = Outcome(start=start_at, body_path=None if to_file == os.devnull else to_file)
        return self._issue(self.client.make_request, outcome, type=s3.S3RequestType.DEFAULT,
                           operation_name="GetObject",
                           request=self._request("GET", path, headers), recv_filepath=to_file)

    def get_body(self, path: str, operation: str = "ListObjectsV2") -> Future[Outcome]:
        """A small GET whose body is kept in `Outcome.body` (listings)."""
        chunks: list[bytes] = []
        outcome = Outcome()
        future = self._issue(self.client.make_request, outcome, chunks,
                             type=s3.S3RequestType.DEFAULT, operation_name=operation,
                             request=self._request("GET", path))
        return _then(future, lambda o: setattr(o, "body", b"".join(chunks)))

    def put_file(self, path: str, source: str, size: int) -> Future[Outcome]:
        """One PUT of the whole file as one HTTP request (no multipart)."""
        outcome = Outcome()
        future = self._issue(self.client.make_request, outcome, type=s3.S3RequestType.DEFAULT,
                             operation_name="PutObject",
                             request=self._request("PUT", path, [("Content-Length", str(size))]),
                             send_filepath=source)
        return _then(future, lambda o: _count_sent(o, size))

    def multipart_put(self, path: str, source: str, size: int, part_size: int,
                      connections: int) -> Future[Outcome]:
        """CRT's multipart upload: `part_size` parts, at most `connections` at a time."""
        outcome = Outcome()
        future = self._issue(self.client.make_request, outcome,
                             type=s3.S3RequestType.PUT_OBJECT,
                             request=self._request("PUT", path, [("Content-Length", str(size))]),
                             send_filepath=source, part_size=part_size,
                             multipart_upload_threshold=part_size,
                             max_active_connections_override=connections)
        return _then(future, lambda o: _count_sent(o, size))


def _then(future: Future[Outcome], finish: Callable[[Outcome], None]) -> Future[Outcome]:
    """A future that resolves after `finish` has completed the outcome."""
    out: Future[Outcome] = Future()

    def done(f: Future[Outcome]) -> None:
        finish(f.result())
        out.set_result(f.result())

    future.add_done_callback(done)
    return out


def _count_sent(outcome: Outcome, size: int) -> None:
    """on_progress counts upload bytes too; a finished PUT sent the whole file."""
    if not outcome.error:
        outcome.nbytes = size


def closed_loop(issue: Iterator[Callable[[], Future[Outcome]]], concurrency: int) -> Batch:
    """Keep `concurrency` requests in flight until `issue` runs out; wait for them all."""
    slots = threading.Semaphore(concurrency)
    batch = Batch()
    futures: list[Future[Outcome]] = []
    start = time.perf_counter()
    for make in issue:
        slots.acquire()
        future = make()
        future.add_done_callback(lambda _: slots.release())
        futures.append(future)
    batch.outcomes = [f.result() for f in futures]
    batch.seconds = time.perf_counter() - start
    return batch


def timed_closed_loop(make: Callable[[int], Future[Outcome]], concurrency: int,
                      seconds: float, max_requests: int | None = None) -> Batch:
    """Closed loop for `seconds` (or `max_requests`): make(i) issues request i."""
    deadline = time.perf_counter() + seconds

    def requests() -> Iterator[Callable[[], Future[Outcome]]]:
        i = 0
        while time.perf_counter() < deadline and (max_requests is None or i < max_requests):
            yield lambda i=i: make(i)
            i += 1

    return closed_loop(requests(), concurrency)


def open_loop(make: Callable[[int, float], Future[Outcome]], rate: float, seconds: float,
              seed: int = 1) -> Batch:
    """Issue requests on a Poisson schedule of `rate` per second for `seconds`, never
    waiting for completions; make(i, scheduled) issues request i. Latency is measured from
    the scheduled time, so a late issue counts against the system (no coordinated
    omission)."""
    import random

    rng = random.Random(seed)
    futures: list[Future[Outcome]] = []
    start = time.perf_counter()
    at, i = start, 0
    while True:
        at += rng.expovariate(rate)
        if at - start > seconds:
            break
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        futures.append(make(i, at))
        i += 1
    batch = Batch([f.result() for f in futures])
    batch.seconds = time.perf_counter() - start
    return batch
