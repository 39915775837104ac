"""The first minutes with `shardgate dev`, against real processes: a busy data directory
or port is refused with a clear reason, a dying child is reported on the terminal, a
stop says what it stopped, and the CLI explains itself (--help defaults, --version)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.e2e.cluster import DevCluster, free_port, wait_http
from tests.e2e.conftest import write_users

pytestmark = pytest.mark.e2e
DEV = [sys.executable, "-m", "shardgate", "dev"]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = DevCluster(tmp_path / "data", free_port(), write_users(tmp_path / "users.toml"))
    yield cluster.start()
    cluster.stop()


def output(cluster: DevCluster) -> str:
    """Everything `shardgate dev` printed so far (DevCluster sends both streams here)."""
    return (cluster.data.parent / f"{cluster.data.name}.dev.log").read_text()


def wait_output(cluster: DevCluster, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in (seen := output(cluster)):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in dev output:\n{output(cluster)}")


def run_dev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEV, *args], capture_output=True, text=True, timeout=90)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_second_dev_on_the_same_data_dir_refuses_and_touches_nothing(dev: DevCluster):
    names = ("cluster.toml", "processes.json", "dev.lock")
    before = {name: (dev.data / name).read_bytes() for name in names}

    second = run_dev("--data", str(dev.data), "--port", str(free_port()))

    assert second.returncode != 0
    assert "ready" not in second.stdout
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert str(dev.data.resolve()) in message and f"pid {dev.proc.pid}" in message
    assert {name: (dev.data / name).read_bytes() for name in names} == before
    assert dev.proc.poll() is None
    wait_http(f"{dev.endpoint}/-/health", timeout=5)


def test_dev_on_a_taken_port_fails_before_ready(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_dev("--data", str(tmp_path / "data"), "--port", str(port))

    assert result.returncode != 0
    assert "ready" not in result.stdout
    assert f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}" in result.stderr
    assert not (tmp_path / "data" / "processes.json").exists()


def test_gateway_that_cannot_start_is_explained_and_every_child_stopped(tmp_path: Path):
    missing = str(tmp_path / "missing.pem")
    result = run_dev("--data", str(tmp_path / "data"), "--port", str(free_port()),
                     "--tls-cert", missing, "--tls-key", missing)

    assert result.returncode == 1
    assert "ready" not in result.stdout
    assert "gateway (pid" in result.stderr and "exited with code" in result.stderr
    assert "No such file or directory" in result.stderr  # the tail of gateway.log
    assert "gateway failed to start" in result.stderr
    assert "stopped rebalancer and 6 volumes (gateway had exited earlier)" in result.stdout
    children = json.loads((tmp_path / "data" / "processes.json").read_text())["children"]
    assert all(gone(child["pid"]) for child in children)


def test_killed_volume_is_reported_on_the_terminal(dev: DevCluster):
    pid = dev.pid_of("v2")
    dev.kill_volume("v2")

    seen = wait_output(dev, f"volume v2 (pid {pid}) killed by SIGKILL, not restarting")
    assert "last lines of" in seen and "v2.log" in seen

    dev.proc.send_signal(signal.SIGTERM)
    assert dev.proc.wait(30) == 0
    assert ("SIGTERM received, stopped gateway, rebalancer and 5 volumes (volume v2 had "
            "exited earlier)"
            in output(dev))


def test_sigint_says_what_stopped(dev: DevCluster):
    children = json.loads((dev.data / "processes.json").read_text())["children"]

    dev.proc.send_signal(signal.SIGINT)

    assert dev.proc.wait(30) == 0
    assert "SIGINT received, stopped gateway, rebalancer and 6 volumes" in output(dev)
    assert all(gone(child["pid"]) for child in children)


def shardgate_command() -> list[str]:
    """The installed console script when there is one (scripts/* install it)."""
    script = Path(sys.executable).parent / "shardgate"
    return [str(script)] if script.exists() else [sys.executable, "-m", "shardgate"]


def test_version_comes_from_package_metadata():
    result = subprocess.run([*shardgate_command(), "--version"], capture_output=True,
                            text=True, timeout=30, check=True)
    assert result.stdout.strip() == f"shardgate {metadata.version('shardgate')}"


def help_entries(*command: str) -> dict[str, str]:
    """Each option's help entry from real `--help` output, joined onto one line."""
    result = subprocess.run([sys.executable, "-m", "shardgate", *command, "--help"],
                            capture_output=True, text=True, timeout=30, check=True)
    entries: dict[str, str] = {}
    option = ""
    for line in result.stdout.splitlines():
        if line.startswith("  -"):
            option = line.split()[0].rstrip(",")
            entries[option] = line.strip()
        elif option and line.startswith("   "):
            entries[option] += " " + line.strip()
        else:
            option = ""
    return entries


def test_dev_help_shows_the_defaults():
    entries = help_entries("dev")
    for option, shown in {"--data": "(default: ./shardgate-data)", "--port": "(default: 9000)",
                          "--volumes": "(default: 6)", "--ec": "(default: 4+2)",
                          "--users": "(default: one user from",
                          "--tls-cert": "(default: plain HTTP)",
                          "--segment-size": "(default: 1048576)",
                          "--gateway-workers": "(default: 1)"}.items():
        assert shown in entries[option], entries[option]


@pytest.mark.parametrize("command", [("dev",), ("gateway",), ("volume",)])
def test_every_option_has_help_with_its_default(command: tuple[str, ...]):
    for option, entry in help_entries(*command).items():
        if option != "-h":
            assert "(default" in entry or "(required)" in entry, entry
