"""Bad clients against real gateway processes: a stalled body gets 400 RequestTimeout and
leaves no staged fragments, stalled uploads do not starve others, slow headers and
silent connections are cut off, and past the concurrency limit requests get 503 SlowDown.

Each test gateway is one more `shardgate gateway` process, started from a copy of the
dev cluster's file with a few [gateway] settings changed, serving the same volumes.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import tomli_w
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.cluster import REGION, DevCluster, free_port, wait_http
from tests.e2e.conftest import USERS
from tests.e2e.helpers import sign

pytestmark = pytest.mark.e2e
MIB = 1 << 20
DECLARED = 10 * MIB
SLACK = 20.0  # generous: the machine may be busy
QUICK_IDLE = 3.0
QUICK_KEEP_ALIVE = 3.0


class Gateway:
    """One extra gateway process over the dev cluster's volumes."""

    def __init__(self, cluster: DevCluster, directory: Path, name: str,
                 **settings: object) -> None:
        raw = tomllib.loads((cluster.data / "cluster.toml").read_text())
        self.port = free_port()
        raw["gateway"] = {**raw.get("gateway", {}), "port": self.port, **settings}
        self.config_path = directory / f"{name}.toml"
        self.config_path.write_bytes(tomli_w.dumps(raw).encode())
        self.log = open(directory / f"{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shardgate", "gateway", "--config", str(self.config_path)],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.settings = settings
        try:
            wait_http(f"{self.endpoint}/-/health")
        except TimeoutError:
            self.stop()
            raise

    def client(self, **config: object):
        access, secret = USERS["alice"]
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=access, aws_secret_access_key=secret,
                            config=Config(**config) if config else None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def quick(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Short body idle and keep-alive timeouts."""
    gateway = Gateway(cluster, tmp_path_factory.mktemp("quick"), "quick",
                      body_idle_timeout_seconds=QUICK_IDLE,
                      keep_alive_timeout_seconds=QUICK_KEEP_ALIVE)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def patient(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    """Default limits and a long idle timeout: stalled uploads stay stalled for a test."""
    gateway = Gateway(cluster, tmp_path_factory.mktemp("patient"), "patient",
                      body_idle_timeout_seconds=120.0)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def tiny(cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Two requests at once, no queue."""
    gateway = Gateway(cluster, tmp_path_factory.mktemp("tiny"), "tiny",
                      max_concurrent_requests=2, max_queued_requests=0,
                      body_idle_timeout_seconds=120.0)
    yield gateway
    gateway.stop()


# --- raw HTTP/1.1 ----------------------------------------------------------------------


def _staging_files(cluster: DevCluster) -> set[Path]:
    out: set[Path] = set()
    for vol in cluster.config.volumes:
        out |= {p for p in (Path(vol.data_dir) / "staging").glob("*") if p.is_file()}
    return out


def _open(endpoint: str, head: str) -> socket.socket:
    parts = urlsplit(endpoint)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    sock.sendall(head.encode("latin-1"))
    return sock


def _head(method: str, path: str, headers: dict[str, str]) -> str:
    return f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"


def stalled_put(endpoint: str, path: str, mode: str, sent: int = MIB,
                signed: bool = True) -> socket.socket:
    """A PUT that declares DECLARED bytes of payload, sends `sent` of them, and stalls."""
    data = b"\0" * sent
    headers: dict[str, str]
    payload = "UNSIGNED-PAYLOAD"
    if mode == "aws-chunked":
        size_line = f"{DECLARED:x}\r\n".encode()
        trailer = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
        headers = {"Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(DECLARED),
                   "x-amz-trailer": "x-amz-checksum-crc32",
                   "Content-Length": str(len(size_line) + DECLARED + 2 + len(trailer))}
        payload = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        first = size_line + data
    elif mode == "http-chunked":
        headers = {"Transfer-Encoding": "chunked"}
        first = f"{sent:x}\r\n".encode() + data + b"\r\n" if sent else b""
    else:
        headers = {"Content-Length": str(DECLARED)}
        if mode == "sha256":
            payload = hashlib.sha256(b"\0" * DECLARED).hexdigest()
        first = data
    url = f"{endpoint}{path}"
    if signed:
        headers = sign("PUT", url, *USERS["alice"], headers, payload=payload)
    else:
        headers = {"Host": urlsplit(url).netloc, **headers}
    sock = _open(endpoint, _head("PUT", path, headers))
    sock.sendall(first)
    return sock


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """All the server sends until it closes the connection, or until `seconds` pass."""
    deadline = time.monotonic() + seconds
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True
        if not piece:
            return data, True
        data += piece
    return data, False


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


# --- the body idle timeout ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["unsigned", "sha256", "aws-chunked", "http-chunked"])
def test_stalled_put_gets_request_timeout_and_leaves_nothing_staged(
        cluster, s3, bucket, quick, mode):
    old = os.urandom(3 * MIB + 5)
    s3.put_object(Bucket=bucket, Key="keep", Body=old)
    before = _staging_files(cluster)
    sock = stalled_put(quick.endpoint, f"/{bucket}/keep", mode)
    stalled_at = time.monotonic()
    staged_meanwhile = False
    with sock:
        while time.monotonic() - stalled_at < QUICK_IDLE / 2:
            staged_meanwhile |= bool(_staging_files(cluster) - before)
            time.sleep(0.05)
        reply, closed = read_until_closed(sock, QUICK_IDLE + SLACK)
    waited = time.monotonic() - stalled_at
    assert status_of(reply) == 400, reply[:300]
    assert b"<Code>RequestTimeout</Code>" in reply and b"<RequestId>" in reply
    assert b"application/xml" in reply.lower()
    assert QUICK_IDLE / 2 < waited < QUICK_IDLE + SLACK
    assert closed  # the body never ended: the connection is not reused
    assert staged_meanwhile  # the first MiB was staged on volumes before the stall ...
    deadline = time.monotonic() + 15
    while _staging_files(cluster) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _staging_files(cluster) - before == set()  # ... and is gone now
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == old


def test_headers_then_nothing_gets_request_timeout(cluster, s3, bucket, quick):
    sock = stalled_put(quick.endpoint, f"/{bucket}/silent", "unsigned", sent=0)
    with sock:
        reply, closed = read_until_closed(sock, QUICK_IDLE + SLACK)
    assert status_of(reply) == 400 and b"<Code>RequestTimeout</Code>" in reply
    assert closed
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="silent")


def test_anonymous_stalled_put_is_cut_off(cluster, bucket, quick):
    """Anonymous requests are refused before the body is read; the refusal waits for the
    body to be drained, and a body that stops arriving no longer holds it."""
    sock = stalled_put(quick.endpoint, f"/{bucket}/anon", "unsigned", signed=False)
    with sock:
        reply, closed = read_until_closed(sock, QUICK_IDLE + SLACK)
    assert status_of(reply) == 403 and b"<Code>AccessDenied</Code>" in reply
    assert closed


def test_slowloris_headers_are_cut_off(quick):
    """Headers sent a byte at a time never complete; keep_alive_timeout closes the
    connection (Hypercorn's clock runs until a request's headers are complete)."""
    head = _head("GET", "/slow/loris", {"Host": "127.0.0.1", "X-Padding": "a" * 2000})
    parts = urlsplit(quick.endpoint)
    started = time.monotonic()
    closed = False
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        for byte in head[:-2]:  # never the final CRLF
            if time.monotonic() - started > QUICK_KEEP_ALIVE + SLACK:
                break
            try:
                sock.sendall(byte.encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                try:
                    closed = sock.recv(65536) == b""
                except ConnectionResetError:
                    closed = True
                if closed:
                    break
    assert closed
    assert time.monotonic() - started < QUICK_KEEP_ALIVE + SLACK


def test_a_connection_that_sends_nothing_is_closed(quick):
    """A client that connects and never sends a byte holds a socket only until the
    keep-alive clock runs out (Hypercorn's clock starts when the connection opens)."""
    raw = tomllib.loads(quick.config_path.read_text())
    if raw.get("gateway_server", raw.get("server", "hypercorn")) == "granian":
        pytest.skip("Granian with HTTP/2 sniffing keeps a silent connection open "
                    "(docs/decisions.md): why the gateway defaults to Hypercorn")
    parts = urlsplit(quick.endpoint)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.settimeout(QUICK_KEEP_ALIVE + SLACK)
        try:
            closed = sock.recv(65536) == b""
        except ConnectionResetError:
            closed = True
    assert closed
    assert time.monotonic() - started < QUICK_KEEP_ALIVE + SLACK


def test_stalled_uploads_do_not_starve_other_clients(cluster, s3, bucket, patient):
    before = _staging_files(cluster)
    stalled = [stalled_put(patient.endpoint, f"/{bucket}/stalled-{i}", "unsigned",
                           sent=256 * 1024) for i in range(50)]
    try:
        client = patient.client()
        data = os.urandom(2 * MIB + 1)
        client.put_object(Bucket=bucket, Key="normal", Body=data)
        assert client.get_object(Bucket=bucket, Key="normal")["Body"].read() == data
        small = client.get_object(Bucket=bucket, Key="normal", Range="bytes=0-99")
        assert small["Body"].read() == data[:100]
        readable, _, _ = select.select(stalled, [], [], 0)
        assert readable == []  # all 50 were still waiting for their bodies meanwhile
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 30
    while _staging_files(cluster) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _staging_files(cluster) - before == set()


# --- the concurrency limit ---------------------------------------------------------------


def _unsigned_get(endpoint: str, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(f"{endpoint}{path}", timeout=30) as resp:
            return resp.status, _lower(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, _lower(err.headers.items()), err.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def test_past_the_concurrency_limit_slow_down_then_normal_service(cluster, s3, bucket, tiny):
    held = [stalled_put(tiny.endpoint, f"/{bucket}/held-{i}", "unsigned", sent=4096)
            for i in range(2)]
    try:
        deadline = time.monotonic() + 15
        status, headers, body = _unsigned_get(tiny.endpoint, f"/{bucket}")
        while status != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            status, headers, body = _unsigned_get(tiny.endpoint, f"/{bucket}")
        assert status == 503, body[:300]
        assert b"<Code>SlowDown</Code>" in body
        request_id = headers["x-amz-request-id"]
        assert f"<RequestId>{request_id}</RequestId>".encode() in body
        assert headers["content-type"].startswith("application/xml")
        assert _unsigned_get(tiny.endpoint, "/-/health")[0] == 200  # never limited
        no_retry = tiny.client(retries={"max_attempts": 1, "mode": "standard"})
        with pytest.raises(ClientError) as err:
            no_retry.head_bucket(Bucket=bucket)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        for sock in held:
            sock.close()
    client = tiny.client()
    deadline = time.monotonic() + 15
    while True:  # the two slots come back once the gateway sees the clients gone
        try:
            client.put_object(Bucket=bucket, Key="after", Body=b"served again")
            break
        except ClientError as exc:
            if time.monotonic() > deadline or \
                    exc.response["ResponseMetadata"]["HTTPStatusCode"] != 503:
                raise
            time.sleep(0.2)
    assert client.get_object(Bucket=bucket, Key="after")["Body"].read() == b"served again"
    assert _unsigned_get(tiny.endpoint, f"/{bucket}")[0] == 403  # anonymous, not limited
