"""A real etcd on loopback for the tests: one member or three, started and stopped by pid.

The tests that use it fail rather than skip when the `etcd` binary is missing (Debian's
etcd-server; `.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.cluster import free_port


class Etcd:
    """`members` etcd processes forming one cluster; `endpoints` are their client URLs."""

    def __init__(self, root: Path, members: int = 1) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            pytest.fail("the etcd binary is missing: install Debian's etcd-server "
                        "(apt-get install etcd-server); .ci/run does")
        self.binary = binary
        self.root = root
        self.names = [f"m{i}" for i in range(members)]
        self.client_ports = {n: free_port() for n in self.names}
        self.peer_ports = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{self.client_ports[n]}" for n in self.names]

    def start(self) -> Etcd:
        for name in self.names:
            self.start_member(name, new=True)
        self.wait_healthy()
        return self

    def start_member(self, name: str, new: bool = False) -> None:
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer_ports[n]}" for n in self.names)
        client = f"http://127.0.0.1:{self.client_ports[name]}"
        peer = f"http://127.0.0.1:{self.peer_ports[name]}"
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
        self.procs[name] = subprocess.Popen(
            [self.binary, "--name", name, "--data-dir", str(self.root / name),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", cluster, "--initial-cluster-token", "shardgate-test",
             "--initial-cluster-state", "new"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ETCD_UNSUPPORTED_ARCH":
                                                        os.environ.get("ETCD_UNSUPPORTED_ARCH",
                                                                       "")})

    def kill_member(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def leader(self, timeout: float = 30.0) -> str:
        """The name of the member that leads, asked of each live member over etcd's JSON
        gateway (waits out an election)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names, leaders = {}, set()
            for name in self.procs:
                url = f"http://127.0.0.1:{self.client_ports[name]}/v3/maintenance/status"
                try:
                    with urllib.request.urlopen(url, data=b"{}", timeout=1) as answer:
                        status = json.loads(answer.read())
                except OSError:
                    continue
                names[status["header"]["member_id"]] = name
                leaders.add(status.get("leader"))
            if len(leaders) == 1 and (leader := leaders.pop()) in names:
                return names[leader]
            time.sleep(0.2)
        raise RuntimeError(f"no etcd leader within {timeout} s; see {self.root}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.procs)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                try:
                    url = f"http://127.0.0.1:{self.client_ports[name]}/health"
                    with urllib.request.urlopen(url, timeout=1) as answer:
                        if b'"true"' in answer.read():
                            pending.discard(name)
                except OSError:
                    pass
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"etcd members {sorted(pending)} not healthy; see {self.root}")

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
