"""How fast a volume added to a cluster fills, and how much moves: `python -m bench.moves`.

Starts its own `shardgate dev` (6 volumes, EC 4+2), writes a mix of objects (inline, one
segment, two segments), starts a 7th volume, adds it, and times the move until the map
says it is finished. The fragments moved are counted from the volumes' own archive lists
(before and after), beside the minimum (1/7 of all fragments). Beside the move's pace
it prints the data disk's fsync/s measured in the same run: every moved version costs a
few fsync'd index writes on each volume of its placement. On demand, never in CI.

    python -m bench.moves [--objects 400] [--concurrency 4] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from bench.disk import fsyncs_per_second
from shardgate.tokens import mint_token

SIZES = (3_000, 150_000, 1_100_000)  # inline, one segment, two segments
KEYS = ("shardgate", "shardgate-secret-key")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, token: str | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


class Dev:
    """A `shardgate dev` cluster in `data`, stopped by its pid."""

    def __init__(self, data: Path, concurrency: int) -> None:
        self.data, self.port = data, _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shardgate", "dev", "--data", str(data), "--port",
             str(self.port), "--volumes", "6", "--ec", "4+2",
             "--rebalance-setting", "versions_per_second=100000",
             "--rebalance-setting", f"concurrency={concurrency}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait(f"http://127.0.0.1:{self.port}/-/ready", timeout=120)
        self.config = tomllib.loads((data / "cluster.toml").read_text())
        self.extra: list[subprocess.Popen] = []

    def s3(self):  # noqa: ANN201 - a boto3 client
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}",
                            region_name="us-east-1", aws_access_key_id=KEYS[0],
                            aws_secret_access_key=KEYS[1])

    def volumes(self) -> dict[str, str]:
        raw = json.loads((self.data / "map-gateway.json").read_text())
        return {v["id"]: v["url"] for v in raw["map"]["volumes"] if v["state"] != "gone"}

    def archives(self) -> dict[str, set[str]]:
        held = {}
        for vid, url in self.volumes().items():
            found: set[str] = set()
            after = ""
            while True:
                request = urllib.request.Request(f"{url}/archives?after={after}&limit=10000")
                request.add_header("Authorization", "Bearer " + mint_token(
                    self.config["jwt_secret"], vid, "read"))
                with urllib.request.urlopen(request, timeout=30) as resp:
                    page = json.loads(resp.read())
                found |= set(page["archives"])
                if page["next"] is None:
                    break
                after = page["next"]
            held[vid] = found
        return held

    def shardgate(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "shardgate", *args], text=True,
                              capture_output=True, check=False)

    def add_volume(self, volume_id: str) -> None:
        url = f"http://127.0.0.1:{_free_port()}"
        config = str(self.data / "cluster.toml")
        self.extra.append(subprocess.Popen(
            [sys.executable, "-m", "shardgate", "volume", "--config", config, "--id",
             volume_id, "--url", url, "--data-dir", str(self.data / volume_id)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait(f"{url}/health", mint_token(self.config["jwt_secret"], volume_id, "read"))
        added = self.shardgate("admin", "--config", config, "volume", "add", volume_id,
                               "--url", url)
        if added.returncode:
            raise RuntimeError(added.stderr)

    def moving(self) -> bool:
        status = self.shardgate("admin", "--config", str(self.data / "cluster.toml"),
                                "rebalance", "status")
        return status.returncode != 0

    def stop(self) -> None:
        for proc in [*self.extra, self.proc]:
            proc.send_signal(signal.SIGTERM)
        for proc in [*self.extra, self.proc]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def fill(s3, count: int) -> None:  # noqa: ANN001 - a boto3 client
    s3.create_bucket(Bucket="moves")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="moves", Key=f"obj/{i:06d}",
                                              Body=os.urandom(SIZES[i % len(SIZES)])),
                      range(count)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.moves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--data", type=Path, default=None,
                        help="where the cluster lives (default: a temporary directory)")
    args = parser.parse_args(argv)
    root = args.data or Path(tempfile.mkdtemp(prefix="shardgate-moves-"))
    dev = Dev(root / "data", args.concurrency)
    try:
        fill(dev.s3(), args.objects)
        fsyncs = fsyncs_per_second(root)
        before = dev.archives()
        started = time.monotonic()
        dev.add_volume("v7")
        while dev.moving():
            time.sleep(0.5)
        took = time.monotonic() - started
        after = dev.archives()
    finally:
        dev.stop()
    existed = set().union(*before.values())
    moved = sum(len((held - before.get(vid, set())) & existed) for vid, held in after.items())
    total = sum(len(held) for held in before.values())
    print(f"objects {args.objects} ({'/'.join(str(s) for s in SIZES)} bytes), "
          f"move concurrency {args.concurrency}")
    print(f"move to 7 volumes: {took:.1f} s, {args.objects / took:.1f} objects/s")
    print(f"fragments moved: {moved} of {total}; minimum {total / 7:.0f} "
          f"({moved / (total / 7):.2f}x)")
    print(f"data disk: {fsyncs:.0f} fsync/s")


if __name__ == "__main__":
    main()
