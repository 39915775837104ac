"""The embedded local cluster behind `shardgate dev`: starting and supervising it.

One gateway and N volume servers as separate processes on 127.0.0.1. A child that dies
is reported, never restarted (a test or an operator decides what happens next). One
`shardgate dev` at a time per data directory: an flock on <data>/dev.lock says who runs it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shardgate.config import ClusterConfig, load_config
from shardgate.devconfig import DevOptions, write_config
from shardgate.metrics_dir import MULTIPROC_ENV, prepare
from shardgate.procs import descendants
from shardgate.tokens import mint_token

PROCESSES_NAME = "processes.json"
LOCK_NAME = "dev.lock"
METRICS_DIR_NAME = "metrics"  # the gateway workers' Prometheus files, emptied every run
LOG_TAIL_LINES = 10
READY_SECONDS = 60


class DevError(RuntimeError):
    """Why `shardgate dev` cannot go on: printed as one line, exit status 1."""


class Interrupted(DevError):
    """SIGINT or SIGTERM arrived while the cluster was still starting."""


def lock_data_dir(data: Path) -> int:
    """Take <data>/dev.lock (flock, held until this process ends) before writing anything,
    so a second `shardgate dev` cannot rewrite the files of a running cluster."""
    data.mkdir(parents=True, exist_ok=True)
    fd = os.open(data / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DevError(f"data directory {data.resolve()} is in use by another shardgate dev "
                       f"(pid {holder}); stop it or pass another --data") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken gateway port up front: otherwise the health check may reach whatever
    already listens there and report a cluster that has no gateway."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise DevError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                               "pass another --port") from None
            holders = sorted(_pids_holding(_listen_inodes(port)))
            by = f" by pid {', '.join(map(str, holders))}" if holders else ""
            raise DevError(f"port {port} on {host} is already in use{by}; "
                           "pass another --port") from None


def _listen_inodes(port: int) -> set[str]:
    """Socket inodes listening on a TCP port (Linux /proc/net; empty elsewhere)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets a process has open, as far as /proc lets us see."""
    found: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def _pids_holding(inodes: set[str]) -> set[int]:
    """Which processes hold any of these sockets (only used to word an error)."""
    if not inodes:
        return set()
    return {int(p.name) for p in Path("/proc").glob("[0-9]*")
            if not inodes.isdisjoint(_socket_inodes(int(p.name)))}


@dataclass
class Child:
    """One supervised process, and where its output starts in its (appended) log."""

    role: str
    ident: str
    proc: subprocess.Popen
    log: Path
    log_start: int = 0

    @property
    def name(self) -> str:
        return self.role if self.role == self.ident else f"{self.role} {self.ident}"


def _child(role: str, ident: str, args: list[str], log: Path,
           env: dict[str, str] | None = None) -> Child:
    with open(log, "ab") as out:  # the child keeps its own descriptor
        start = out.tell()
        proc = subprocess.Popen([sys.executable, "-m", "shardgate", *args], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent, env=env)
    return Child(role, ident, proc, log, start)


def exit_reason(returncode: int) -> str:
    """'exited with code 2' or 'killed by SIGKILL': what a terminal user needs first."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def log_tail(child: Child, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last lines this run of the child wrote (logs are appended across runs)."""
    try:
        with open(child.log, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(child.log_start, size - 16384))
            text = fh.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def report_exit(child: Child, note: str = "") -> None:
    """Say on the terminal, not only in the log, that a child ended and why."""
    tail = log_tail(child)
    where = f"; last lines of {child.log}:" if tail else f" (nothing in {child.log})"
    _say(f"{child.name} (pid {child.proc.pid}) {exit_reason(child.proc.returncode)}"
         f"{note}{where}", err=True)
    for line in tail:
        print(f"    {line}", file=sys.stderr, flush=True)


def _say(message: str, err: bool = False) -> None:
    print(f"shardgate dev: {message}", file=sys.stderr if err else sys.stdout, flush=True)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when `shardgate dev` dies, even by SIGKILL,
    so no orphan keeps a port or a data directory (Linux prctl; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError, TypeError):
        pass


class _Signals:
    """Remembers the first SIGINT/SIGTERM; every wait loop polls it to stop promptly."""

    def __init__(self) -> None:
        self.received: str | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        self.received = self.received or signal.Signals(signum).name

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self)


def _ready(child: Child, url: str, token: str | None, deadline: float,
           signals: _Signals) -> None:
    """Poll a health endpoint until it answers 200 (the dev cert is self-signed)."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    while time.monotonic() < deadline:
        if signals.received:
            raise Interrupted(signals.received)
        if child.proc.poll() is not None:
            report_exit(child)
            raise DevError(f"{child.name} failed to start")
        try:
            with urllib.request.urlopen(request, timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise DevError(f"{child.name} not healthy at {url} after {READY_SECONDS} s; "
                   f"see {child.log}")


def _start_children(config: ClusterConfig, config_path: Path, logs: Path,
                    children: list[Child]) -> None:
    """Start every volume, then the gateway; appends as it goes so a failure stops all."""
    logs.mkdir(exist_ok=True)
    for vol in config.volumes:
        children.append(_child("volume", vol.id, ["volume", "--config", str(config_path),
                                                  "--id", vol.id], logs / f"{vol.id}.log"))
    metrics = prepare(logs.parent / METRICS_DIR_NAME)
    children.append(_child("gateway", "gateway", ["gateway", "--config", str(config_path)],
                           logs / "gateway.log", {**os.environ, MULTIPROC_ENV: str(metrics)}))
    children.append(_child("rebalancer", "rebalancer", ["rebalancer", "--config",
                                                        str(config_path)],
                           logs / "rebalancer.log"))


def _endpoint(config: ClusterConfig) -> str:
    scheme = "https" if config.gateway.tls_cert else "http"
    return f"{scheme}://{config.gateway.host}:{config.gateway.port}"


def _wait_ready(config: ClusterConfig, children: list[Child], signals: _Signals) -> None:
    """Every child healthy, and the gateway's port really served by our gateway."""
    deadline = time.monotonic() + READY_SECONDS
    for child in children:
        if child.role == "volume":
            _ready(child, f"{config.volume(child.ident).url}/health",
                   mint_token(config.jwt_secret, child.ident, "read"), deadline, signals)
        elif child.role == "rebalancer":
            if child.proc.poll() is not None:  # it has no port: alive is ready
                report_exit(child)
                raise DevError("rebalancer failed to start")
        else:
            _ready(child, f"{_endpoint(config)}/-/health", None, deadline, signals)
            _check_serves_port(child, config.gateway.port)


def _check_serves_port(gateway: Child, port: int) -> None:
    """A 200 on the port proves nothing if another process took it first: require our
    gateway alive and it or its worker processes holding the listening socket (where
    /proc shows sockets)."""
    if gateway.proc.poll() is not None:
        report_exit(gateway)
        raise DevError("gateway failed to start")
    listeners = _listen_inodes(port)
    pids = [gateway.proc.pid, *descendants(gateway.proc.pid)]
    ours = set().union(*map(_socket_inodes, pids))
    if listeners and listeners.isdisjoint(ours):
        holders = sorted(_pids_holding(listeners))
        raise DevError(f"port {port} is answered by pid {', '.join(map(str, holders)) or '?'},"
                       f" not by our gateway (pid {gateway.proc.pid}); pass another --port")


def _print_banner(opts: DevOptions, config: ClusterConfig, config_path: Path) -> None:
    user = config.users[0]
    print(f"shardgate dev cluster ready: {len(config.volumes)} volumes, "
          f"EC {config.erasure.k}+{config.erasure.m}", flush=True)
    print(f"  endpoint:    {_endpoint(config)}", flush=True)
    print("  region:      us-east-1", flush=True)
    print(f"  access key:  {user.access_key}", flush=True)
    print(f"  secret key:  {user.secret_key}", flush=True)
    print(f"  data dir:    {opts.data.resolve()}  (config: {config_path})", flush=True)
    print("  Ctrl-C stops the cluster.", flush=True)


def _supervise(children: list[Child], signals: _Signals) -> None:
    """Until a stop signal: report each child that exits; none is restarted."""
    reported: set[int] = set()
    while not signals.received:
        for child in children:
            if child.proc.pid not in reported and child.proc.poll() is not None:
                reported.add(child.proc.pid)
                report_exit(child, ", not restarting")
        time.sleep(0.2)


def run_dev(opts: DevOptions) -> int:
    """Lock the data directory, start and supervise the cluster until SIGINT/SIGTERM.

    0 after a requested stop; 1 (with the reason printed) if it could not start."""
    signals = _Signals()
    signals.install()
    try:
        lock = lock_data_dir(opts.data)
    except DevError as exc:
        _say(str(exc), err=True)
        return 1
    children: list[Child] = []
    try:
        check_port_free(opts.host, opts.port)
        config_path = write_config(opts)
        config = load_config(config_path)
        _start_children(config, config_path, opts.data / "logs", children)
        _write_processes(opts.data, config, children)
        _wait_ready(config, children, signals)
        _print_banner(opts, config, config_path)
        _supervise(children, signals)
        return 0
    except Interrupted:
        return 0
    except DevError as exc:
        _say(str(exc), err=True)
        return 1
    finally:
        _say_stopped(_stop_all(children), children, signals.received)
        os.close(lock)


def _write_processes(data: Path, config: ClusterConfig, children: list[Child]) -> None:
    urls = {v.id: v.url for v in config.volumes}
    gateway_url = f"http://{config.gateway.host}:{config.gateway.port}"
    entries = [{"role": c.role, "id": c.ident, "pid": c.proc.pid,
                "url": urls.get(c.ident, gateway_url if c.role == "gateway" else "")}
               for c in children]
    (data / PROCESSES_NAME).write_text(json.dumps({"pid": os.getpid(), "children": entries},
                                                  indent=2))


def _stop_all(children: list[Child]) -> list[Child]:
    """SIGTERM every live child (SIGKILL after 10 s); returns the ones that were alive."""
    alive = [c for c in children if c.proc.poll() is None]
    for child in alive:
        child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in alive:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    return alive


def describe_stopped(stopped: list[Child]) -> str:
    """'gateway, rebalancer and 6 volumes', '1 volume', 'nothing': the words for what was
    stopped."""
    volumes = sum(c.role == "volume" for c in stopped)
    parts = [role for role in ("gateway", "rebalancer") if any(c.role == role for c in stopped)]
    if volumes:
        parts.append(f"{volumes} volume{'s' if volumes != 1 else ''}")
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else "nothing"


def _say_stopped(stopped: list[Child], children: list[Child], signal_name: str | None) -> None:
    """Tell the terminal what this shutdown stopped, and what had exited earlier."""
    if not children and not signal_name:
        return
    gone = [c.name for c in children if c not in stopped]
    line = f"stopped {describe_stopped(stopped)}"
    if gone:
        line += f" ({', '.join(gone)} had exited earlier)"
    _say(f"{signal_name} received, {line}" if signal_name else line)
