"""The embedded local cluster behind `shardgate dev`: config generation and supervision.

One gateway and N volume servers as separate processes on 127.0.0.1. A child that dies
is reported, never restarted (a test or an operator decides what happens next).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from shardgate.config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    ClusterConfig,
    User,
    load_config,
)
from shardgate.tokens import mint_token

CONFIG_NAME = "cluster.toml"
PROCESSES_NAME = "processes.json"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def default_users() -> tuple[User, ...]:
    return (User(access_key=os.environ.get("SHARDGATE_ACCESS_KEY", DEFAULT_ACCESS_KEY),
                 secret_key=os.environ.get("SHARDGATE_SECRET_KEY", DEFAULT_SECRET_KEY),
                 display_name="shardgate", user_id="shardgate"),)


@dataclass
class DevOptions:
    data: Path
    port: int = 9000
    volumes: int = 6
    k: int = 4
    m: int = 2
    users: tuple[User, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    host: str = "127.0.0.1"
    segment_size: int = 1 << 20
    workers: int = 1


def write_config(opts: DevOptions) -> Path:
    """Write <data>/cluster.toml, keeping the JWT secret of an earlier run."""
    opts.data.mkdir(parents=True, exist_ok=True)
    path = opts.data / CONFIG_NAME
    secret = secrets.token_hex(32)
    if path.exists():
        with open(path, "rb") as fh:
            secret = tomllib.load(fh).get("jwt_secret", secret)
    users = opts.users or default_users()
    raw = {
        "jwt_secret": secret,
        "erasure": {"k": opts.k, "m": opts.m, "ec_type": "isa_l_rs_vand",
                    "segment_size": opts.segment_size},
        "gateway": {"host": opts.host, "port": opts.port, "tls_cert": opts.tls_cert,
                    "tls_key": opts.tls_key, "workers": opts.workers},
        "volumes": [{"id": f"v{i}", "url": f"http://{opts.host}:{free_port(opts.host)}",
                     "data_dir": str((opts.data / f"v{i}").resolve())}
                    for i in range(1, opts.volumes + 1)],
        "users": [u.__dict__ for u in users],
    }
    with open(path, "wb") as fh:
        tomli_w.dump(raw, fh)
    return path


def _child(args: list[str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - the child owns it for its whole life
    return subprocess.Popen([sys.executable, "-m", "shardgate", *args], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_die_with_parent)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when `shardgate dev` dies, even by SIGKILL,
    so no orphan keeps a port or a data directory (Linux prctl; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError, TypeError):
        pass


def _ready(url: str, token: str | None, deadline: float, proc: subprocess.Popen) -> None:
    """Poll a health endpoint until it answers 200 (the dev cert is self-signed)."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in time")


def run_dev(opts: DevOptions) -> int:
    config_path = write_config(opts)
    config = load_config(config_path)
    logs = opts.data / "logs"
    logs.mkdir(exist_ok=True)
    children: list[tuple[str, str, subprocess.Popen]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for vol in config.volumes:
            proc = _child(["volume", "--config", str(config_path), "--id", vol.id],
                          logs / f"{vol.id}.log")
            children.append(("volume", vol.id, proc))
        gw = _child(["gateway", "--config", str(config_path)], logs / "gateway.log")
        children.append(("gateway", "gateway", gw))
        _write_processes(opts.data, config, children)
        deadline = time.monotonic() + 60
        for (_, vid, proc), vol in zip(children, config.volumes, strict=False):
            _ready(f"{vol.url}/health", mint_token(config.jwt_secret, vid, "read"), deadline,
                   proc)
        scheme = "https" if config.gateway.tls_cert else "http"
        endpoint = f"{scheme}://{config.gateway.host}:{config.gateway.port}"
        _ready(f"{endpoint}/-/health", None, deadline, gw)
        user = config.users[0]
        print(f"shardgate dev cluster ready: {len(config.volumes)} volumes, "
              f"EC {config.erasure.k}+{config.erasure.m}", flush=True)
        print(f"  endpoint:    {endpoint}", flush=True)
        print("  region:      us-east-1", flush=True)
        print(f"  access key:  {user.access_key}", flush=True)
        print(f"  secret key:  {user.secret_key}", flush=True)
        print(f"  data dir:    {opts.data.resolve()}  (config: {config_path})", flush=True)
        print("  Ctrl-C stops the cluster.", flush=True)
        reported: set[int] = set()
        while not stopping:
            for role, ident, proc in children:
                if proc.poll() is not None and proc.pid not in reported:
                    reported.add(proc.pid)
                    print(f"{role} {ident} (pid {proc.pid}) exited with {proc.returncode}; "
                          "not restarting", flush=True)
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        print(f"shardgate dev: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop_all([p for _, _, p in children])


def _write_processes(data: Path, config: ClusterConfig,
                     children: list[tuple[str, str, subprocess.Popen]]) -> None:
    urls = {v.id: v.url for v in config.volumes}
    entries = [{"role": role, "id": ident, "pid": proc.pid,
                "url": urls.get(ident, f"http://{config.gateway.host}:{config.gateway.port}")}
               for role, ident, proc in children]
    (data / PROCESSES_NAME).write_text(json.dumps({"pid": os.getpid(), "children": entries},
                                                  indent=2))


def _stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
