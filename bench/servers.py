"""Start and stop the systems under test: a `shardgate dev` cluster and the limit apps."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.catalog import SHARED_ENV

REPO = Path(__file__).resolve().parent.parent
HEALTH_PATH = "/-/health"
DEFAULT_ACCESS_KEY = "shardgate"
DEFAULT_SECRET_KEY = "shardgate-secret-key"
FRAGMENT_BACKENDS = 6
READY_LINE = "shardgate dev cluster ready"


@dataclass
class Target:
    """One endpoint to measure, with the processes behind it."""

    name: str
    endpoint: str
    pids: dict[str, int] = field(default_factory=dict)  # role -> pid, for profiling
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args: list[str], log: Path, extra_env: dict[str, str] | None = None
           ) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p), **(extra_env or {}))
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Poll `url` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, proc.args))} exited with "
                               f"{proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout:.0f} s; see {log}")


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """The dev supervisor prints its banner once every volume and the gateway answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"shardgate dev exited with {proc.returncode}; see {log}")
        time.sleep(0.1)
    raise RuntimeError(f"shardgate dev never printed {text!r}; see {log}")


def _terminate(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _kill_leftovers(pids: list[int]) -> None:
    """SIGKILL children of a dev cluster that outlived it (only after a forced stop)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def dev_data_name(server: str | None) -> str:
    """The data directory's name of `shardgate_dev(server=...)`."""
    return f"shardgate-data-{server or 'default'}"


@contextlib.contextmanager
def shardgate_dev(workdir: Path, gateway_workers: int = 1, server: str | None = None
                  ) -> Iterator[Target]:
    """A fresh `shardgate dev` (one gateway, six volumes, EC 4+2) on a free port, every
    process under `server` (None: each role under its default server)."""
    data = workdir / dev_data_name(server)
    log = workdir / f"shardgate-dev-{server or 'default'}.log"
    port = free_port()
    args = ["shardgate", "dev", "--data", str(data), "--port", str(port)]
    if server:
        args += ["--server", server]
    if gateway_workers != 1:
        args += ["--gateway-workers", str(gateway_workers)]
    proc = _spawn(args, log)
    endpoint = f"http://127.0.0.1:{port}"
    children: list[int] = []
    try:
        wait_healthy(endpoint + HEALTH_PATH, proc, log, timeout=90)
        _wait_for_line(log, READY_LINE, proc)
        processes = json.loads((data / "processes.json").read_text())
        pids = {"dev": processes["pid"]}
        for child in processes["children"]:
            pids[child["id"]] = child["pid"]
            children.append(child["pid"])
        yield Target(f"shardgate-{server}" if server else "shardgate",
                     endpoint, pids)
    finally:
        _terminate(proc)
        if proc.returncode and proc.returncode < 0:
            _kill_leftovers(children)


@contextlib.contextmanager
def one_hop(workdir: Path, granian: bool = False, workers: int = 1) -> Iterator[Target]:
    """The trivial S3-shaped store under Hypercorn, or Granian (asyncio loop), with as
    many worker processes as the gateway: what one hop of each serving stack reaches."""
    name = "one-hop-granian" if granian else "one-hop"
    port = free_port()
    log = workdir / f"{name}.log"
    proc = _limit_app("store", port, log, granian, workers=workers)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(endpoint + HEALTH_PATH, proc, log)
        yield Target(name, endpoint, {"store": proc.pid})
    finally:
        _terminate(proc)


def _granian(target: str, port: int, log: Path, env: dict[str, str], workers: int = 1
             ) -> subprocess.Popen:
    """An ASGI app factory `module:callable` under Granian's own process runner."""
    return _spawn(["granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(workers), "--loop", "asyncio",
                   "--no-ws", target], log, env)


@contextlib.contextmanager
def gateway_granian(workdir: Path) -> Iterator[Target]:
    """The gateway app under Granian's own process runner (one worker) in front of a
    fresh `shardgate dev`'s volumes, all under Hypercorn; the dev cluster's own gateway
    stays idle."""
    (workdir / "granian").mkdir(exist_ok=True)
    with shardgate_dev(workdir / "granian", server="hypercorn") as dev:
        port = free_port()
        log = workdir / "gateway-granian.log"
        env = {"SHARDGATE_CONFIG": str(workdir / "granian" / dev_data_name("hypercorn") /
                                       "cluster.toml")}
        proc = _granian("gateway.asgi:create", port, log, env)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(endpoint + HEALTH_PATH, proc, log)
            yield Target("gateway-granian", endpoint, {**dev.pids, "gateway": proc.pid})
        finally:
            _terminate(proc)


def _limit_app(role: str, port: int, log: Path, granian: bool, backends: tuple[str, ...] = (),
               workers: int = 1) -> subprocess.Popen:
    """One bench.limits app, under Hypercorn (its own CLI) or Granian (by factory); its
    workers, if several, share one catalog of what was stored (bench/catalog.py)."""
    shared = {}
    if workers > 1:
        path = log.with_suffix(".catalog.sqlite")
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        shared[SHARED_ENV] = str(path)
    if not granian:
        return _spawn(["bench.limits", role, "--port", str(port), "--workers", str(workers),
                       *(["--backends", ",".join(backends)] if backends else [])], log,
                      shared)
    factory = {"store": "store_app", "fragments": "fragments_app", "forward": "forward_app"}
    return _granian(f"bench.limits:{factory[role]}", port, log,
                    {"BENCH_BACKENDS": ",".join(backends), **shared}, workers)


@contextlib.contextmanager
def two_hop(workdir: Path, granian: bool = False, workers: int = 1) -> Iterator[Target]:
    """The trivial forwarder (with as many worker processes as the gateway) in front of
    six trivial fragment stores."""
    name = "two-hop-granian" if granian else "two-hop"
    procs: list[subprocess.Popen] = []
    pids: dict[str, int] = {}
    try:
        backends = []
        for i in range(1, FRAGMENT_BACKENDS + 1):
            port = free_port()
            log = workdir / f"{name}-v{i}.log"
            procs.append(_limit_app("fragments", port, log, granian))
            backends.append(f"http://127.0.0.1:{port}")
            pids[f"v{i}"] = procs[-1].pid
        for url, proc in zip(backends, procs, strict=True):
            wait_healthy(url + HEALTH_PATH, proc, workdir / f"{name}-v*.log")
        port = free_port()
        log = workdir / f"{name}-forwarder.log"
        procs.append(_limit_app("forward", port, log, granian, tuple(backends), workers))
        pids["forwarder"] = procs[-1].pid
        endpoint = f"http://127.0.0.1:{port}"
        wait_healthy(endpoint + HEALTH_PATH, procs[-1], log)
        yield Target(name, endpoint, pids)
    finally:
        for proc in reversed(procs):
            _terminate(proc)
