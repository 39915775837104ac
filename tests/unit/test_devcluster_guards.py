"""`shardgate dev`'s guards, in-process: the data-directory lock, the check that the
gateway port is served by our gateway and not by whoever held it first, and the words
used for exits and stops."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardgate.devcluster import (
    Child,
    DevError,
    _check_serves_port,
    describe_stopped,
    exit_reason,
    lock_data_dir,
)
from shardgate.devconfig import free_ports

LISTEN = ("import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
          "s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def child(proc: subprocess.Popen, tmp_path: Path, role: str = "gateway") -> Child:
    return Child(role, role, proc, tmp_path / "gateway.log")


def test_second_lock_on_a_data_dir_names_the_holder(tmp_path: Path):
    fd = lock_data_dir(tmp_path / "data")
    try:
        with pytest.raises(DevError, match=f"in use by another shardgate dev \\(pid {os.getpid()}"):
            lock_data_dir(tmp_path / "data")
    finally:
        os.close(fd)
    os.close(lock_data_dir(tmp_path / "data"))  # released with its descriptor


def test_port_answered_by_another_process_is_not_our_gateway(tmp_path: Path, processes):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        processes.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        with pytest.raises(DevError, match=f"answered by pid {os.getpid()}, not by our gateway"):
            _check_serves_port(child(processes[0], tmp_path), other.getsockname()[1])


def test_port_held_by_our_gateway_passes(tmp_path: Path, processes):
    processes.append(subprocess.Popen([sys.executable, "-c", LISTEN], stdout=subprocess.PIPE,
                                      text=True))
    port = int(processes[0].stdout.readline())
    _check_serves_port(child(processes[0], tmp_path), port)


def test_exit_reasons_and_stop_summaries(tmp_path: Path, processes):
    assert exit_reason(2) == "exited with code 2"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    processes.append(subprocess.Popen([sys.executable, "-c", "pass"]))
    gateway, volume = child(processes[0], tmp_path), child(processes[0], tmp_path, "volume")
    assert describe_stopped([gateway, volume, volume]) == "gateway and 2 volumes"
    assert describe_stopped([volume]) == "1 volume"
    assert describe_stopped([]) == "nothing"
    rebalancer = dataclasses.replace(gateway, role="rebalancer", ident="rebalancer")
    assert describe_stopped([gateway, rebalancer, volume]) == \
        "gateway, rebalancer and 1 volume"


def test_volume_ports_are_distinct_and_never_the_gateways():
    gateway = 40000
    for _ in range(50):
        ports = free_ports("127.0.0.1", 6, gateway)
        assert len(set(ports)) == 6 and gateway not in ports


def test_volume_ports_skip_a_gateway_port_the_kernel_offers():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        offered = probe.getsockname()[1]
    # whatever the kernel hands out next, the gateway's port is never among the volumes'
    assert offered not in free_ports("127.0.0.1", 200, offered)
