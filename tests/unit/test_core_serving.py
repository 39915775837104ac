"""shardgate.serving under each server, in a child process with a trivial app: requests
are answered, and a connection that never sends a byte is closed by the keep-alive clock
(the volume servers' setting: Granian in HTTP/1-only mode, or Hypercorn)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

KEEP_ALIVE = 1.0
CHILD = """
import sys
from shardgate.serving import hypercorn_config, run_app

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

run_app(app, hypercorn_config("127.0.0.1", int(sys.argv[1]), keep_alive_timeout=float(sys.argv[3])),
        sys.argv[2], http1_only=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["granian", "hypercorn"])
def server(request):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(port), request.param,
                             str(KEEP_ALIVE)])
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                assert resp.read() == b"ok"
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    yield port
    proc.terminate()
    assert proc.wait(15) == 0


def test_a_silent_connection_is_closed_by_the_keep_alive_clock(server):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=20) as sock:
        try:
            closed = sock.recv(100) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    assert closed
    assert time.monotonic() - started < KEEP_ALIVE + 10
