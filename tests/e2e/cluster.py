"""Start and drive a real `shardgate dev` cluster for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

from shardgate.config import ClusterConfig, load_config
from shardgate.tokens import mint_token

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, token: str | None = None,
              alive: subprocess.Popen | None = None) -> None:
    """Poll until `url` answers 200; give up early if the process `alive` exits."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise TimeoutError(f"{url}: the process exited ({alive.returncode}) first")
        try:
            with urllib.request.urlopen(request, timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")


@dataclass
class DevCluster:
    data: Path
    port: int
    users_file: Path
    tls: tuple[str, str] | None = None
    proc: subprocess.Popen | None = None
    extra: list[subprocess.Popen] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)  # more `shardgate dev` options
    env: dict[str, str] = field(default_factory=dict)  # more environment, restarts too

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> DevCluster:
        args = [sys.executable, "-m", "shardgate", "dev", "--data", str(self.data),
                "--port", str(self.port), "--volumes", "6", "--ec", "4+2",
                "--users", str(self.users_file)]
        if self.tls:
            args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        args += self.extra_args
        self.log = open(self.data.parent / f"{self.data.name}.dev.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        deadline = time.monotonic() + 90
        while not (self.data / "processes.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"shardgate dev did not start\n{self.startup_logs()}")
            time.sleep(0.1)
        try:
            wait_http(f"{self.endpoint}/-/health", alive=self.proc)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.startup_logs()}") from None
        for vid in self.volume_ids:
            wait_http(f"{self.config.volume(vid).url}/health", token=self.token(vid))
        return self

    def startup_logs(self, lines: int = 30) -> str:
        """The last lines `shardgate dev` and the gateway printed: why a start failed."""
        tails = []
        for path in (self.data.parent / f"{self.data.name}.dev.log",
                     self.data / "logs" / "gateway.log"):
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            tails.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(tails)

    def stop(self) -> None:
        for proc in self.extra:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:  # say so, and stop the rest all the same
                    print(f"pid {proc.pid} ({proc.args}) ignored SIGTERM for 10 s: killed")
                    proc.kill()
                    proc.wait(10)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    @property
    def config(self) -> ClusterConfig:
        return load_config(self.data / "cluster.toml")

    @property
    def volume_ids(self) -> list[str]:
        return [v.id for v in self.config.volumes]

    def token(self, volume_id: str, scope: str = "read") -> str:
        return mint_token(self.config.jwt_secret, volume_id, scope)

    def pid_of(self, volume_id: str) -> int:
        for proc in self.extra:
            if getattr(proc, "volume_id", None) == volume_id and proc.poll() is None:
                return proc.pid
        children = json.loads((self.data / "processes.json").read_text())["children"]
        return next(c["pid"] for c in children if c["id"] == volume_id)

    def kill_volume(self, volume_id: str) -> None:
        pid = self.pid_of(volume_id)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().split()[2] == "Z":
                        break
            except (ProcessLookupError, FileNotFoundError):
                break
            time.sleep(0.05)

    def volume_alive(self, volume_id: str) -> bool:
        pid = self.pid_of(volume_id)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split()[2] != "Z"
        except FileNotFoundError:
            return False

    def restart_volume(self, volume_id: str) -> None:
        log = open(self.data / "logs" / f"{volume_id}.restart.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "shardgate", "volume", "--config",
                                 str(self.data / "cluster.toml"), "--id", volume_id],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env})
        proc.volume_id = volume_id  # type: ignore[attr-defined]
        self.extra.append(proc)
        wait_http(f"{self.config.volume(volume_id).url}/health", token=self.token(volume_id))

    def second_gateway(self) -> str:
        """Start one more gateway process on the same volumes (stopped with the cluster);
        its endpoint. Two gateways show what a per-process cache or claim would hide."""
        port = free_port()
        config = self.data / f"gateway-{port}.toml"
        text = (self.data / "cluster.toml").read_text()
        config.write_text(text.replace(f"port = {self.port}", f"port = {port}"))
        log = open(self.data / "logs" / f"gateway-{port}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "shardgate", "gateway", "--config",
                                 str(config)], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **self.env})
        self.extra.append(proc)
        endpoint = f"{self.scheme}://127.0.0.1:{port}"
        wait_http(f"{endpoint}/-/ready")
        return endpoint

    def stop_gateway(self, endpoint: str) -> None:
        """Stop a gateway second_gateway() started (SIGKILL: it may be held or armed)."""
        port = endpoint.rpartition(":")[2]
        for proc in self.extra:
            if f"gateway-{port}.toml" in " ".join(map(str, proc.args)) and proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def client_at(self, endpoint: str, access_key: str, secret_key: str, **config: object):
        return boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                            verify=False, config=Config(**config) if config else None)

    def gateway_pid(self) -> int:
        children = json.loads((self.data / "processes.json").read_text())["children"]
        return next(c["pid"] for c in children if c["role"] == "gateway")

    def client(self, access_key: str, secret_key: str, **config: object):
        return self.client_at(self.endpoint, access_key, secret_key, **config)
