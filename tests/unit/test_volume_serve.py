"""`volume_server.serve.run` in a real process: binds from the config, answers, stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shardgate.config import ClusterConfig, ConfigError, VolumeSpec
from shardgate.tokens import mint_token
from volume_server.serve import listen_address, run

REPO = Path(__file__).resolve().parents[2]
SECRET = "volume-test-secret-0123456789abcdef"

LAUNCH = ("import sys; from shardgate.config import load_config; "
          "from volume_server.serve import run; run(load_config(sys.argv[1]), 'v1')")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_listen_address() -> None:
    assert listen_address("http://127.0.0.1:8101") == ("127.0.0.1", 8101)
    assert listen_address("http://[::1]:9000/") == ("[::1]", 9000)
    assert listen_address("volume-1:7000") == ("volume-1", 7000)
    assert listen_address("http://vol") == ("vol", 80)


def test_serve_run_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "cluster.toml"
    config.write_text(
        f'jwt_secret = "{SECRET}"\n'
        "[erasure]\nk = 1\nm = 0\n"
        f'[[volumes]]\nid = "v1"\nurl = "http://127.0.0.1:{port}"\n'
        f'data_dir = "{data_dir}"\n'
    )
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, str(config)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        headers = {"authorization": f"Bearer {mint_token(SECRET, 'v1', 'read')}"}
        deadline = time.monotonic() + 20
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", headers=headers)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None, proc.stdout.read().decode() if proc.stdout else ""
        assert answer.status_code == 200
        health = answer.json()
        assert health.pop("data_id") and health.pop("rebuilding") is True  # a new directory
        assert health == {"id": "v1", "format": 1, "status": "ok", "clock": ""}
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 401
        assert json.loads((data_dir / "FORMAT").read_text())["volume_id"] == "v1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_refuses_another_volumes_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "FORMAT").write_text(json.dumps({"format": 1, "volume_id": "v9"}))
    config = ClusterConfig(volumes=(VolumeSpec(id="v1", url="http://127.0.0.1:1",
                                               data_dir=str(data_dir)),), jwt_secret=SECRET)
    with pytest.raises(ConfigError, match="belongs to volume 'v9'"):
        run(config, "v1")
    with pytest.raises(ConfigError, match="no data_dir"):
        run(ClusterConfig(volumes=(VolumeSpec(id="v1", url="http://127.0.0.1:1"),),
                          jwt_secret=SECRET), "v1")


def test_second_volume_process_on_the_same_data_dir_exits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    configs = []
    for n in (1, 2):
        path = tmp_path / f"cluster{n}.toml"
        path.write_text(
            f'jwt_secret = "{SECRET}"\n'
            "[erasure]\nk = 2\nm = 1\n"
            f'[[volumes]]\nid = "v1"\nurl = "http://127.0.0.1:{free_port()}"\n'
            f'data_dir = "{data_dir}"\n'
            '[[volumes]]\nid = "v2"\nurl = "http://127.0.0.1:2"\n'
            '[[volumes]]\nid = "v3"\nurl = "http://127.0.0.1:3"\n'
        )
        configs.append(path)
    first = subprocess.Popen([sys.executable, "-m", "shardgate", "volume", "--config",
                              str(configs[0]), "--id", "v1"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not (data_dir / "staging").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (data_dir / "staging" / "in-flight").write_bytes(b"first volume's write")
        second = subprocess.run([sys.executable, "-m", "shardgate", "volume", "--config",
                                 str(configs[1]), "--id", "v1"], cwd=REPO,
                                capture_output=True, text=True, timeout=30)
        assert second.returncode != 0
        assert "in use by another volume process" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert (data_dir / "staging" / "in-flight").exists()
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)
