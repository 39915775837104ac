"""What the rebalance tests share: a new volume process, the admin commands, the
volumes' archive lists (to count moved fragments from outside the rebalancer), a mixed
object set and a client that keeps reading and writing during a move."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import DevCluster, free_port, wait_http
from tests.e2e.helpers import counter_at


def start_volume(dev: DevCluster, volume_id: str) -> str:
    """Run a volume the map does not know yet; its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    log = open(dev.data / "logs" / f"{volume_id}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "shardgate", "volume", "--config",
                             str(dev.data / "cluster.toml"), "--id", volume_id, "--url", url,
                             "--data-dir", str(dev.data / volume_id)],
                            stdout=log, stderr=subprocess.STDOUT)
    proc.volume_id = volume_id  # type: ignore[attr-defined]
    dev.extra.append(proc)
    wait_http(f"{url}/health", token=dev.token(volume_id))
    return url


def admin(dev: DevCluster, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shardgate", "admin", "--config",
                           str(dev.data / "cluster.toml"), *args],
                          capture_output=True, text=True, timeout=timeout)


def map_urls(dev: DevCluster) -> dict[str, str]:
    """Every serving volume's URL, from the dev cluster's persisted map copy."""
    raw = json.loads((dev.data / "map-gateway.json").read_text())
    return {v["id"]: v["url"] for v in raw["map"]["volumes"] if v["state"] != "gone"}


def archives(dev: DevCluster, volume_id: str, url: str) -> set[str]:
    """The archive ids a volume's rows own (GET /archives, every page)."""
    found: set[str] = set()
    after = ""
    while True:
        request = urllib.request.Request(f"{url}/archives?after={after}&limit=10000")
        request.add_header("Authorization", f"Bearer {dev.token(volume_id)}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            page = json.loads(answer.read())
        found |= set(page["archives"])
        if page["next"] is None:
            return found
        after = page["next"]


def archive_lists(dev: DevCluster) -> dict[str, set[str]]:
    return {vid: archives(dev, vid, url) for vid, url in map_urls(dev).items()}


def moved_fragments(before: dict[str, set[str]], after: dict[str, set[str]]) -> int:
    """Fragments of what existed before that sit on a volume which did not hold them."""
    existed = set().union(*before.values())
    return sum(len((held - before.get(vid, set())) & existed) for vid, held in after.items())


# Inline below the 128 KiB threshold, one 1 MiB segment, two segments.
SIZES = {"inline": 3_000, "single": 150_000, "multi": 1_100_000}


def fill(s3, bucket: str, count: int, multipart: int = 0) -> dict[str, str]:
    """`count` objects of mixed kinds (inline, one segment, several segments), `multipart`
    of them multipart; key -> MD5 of the body."""
    kinds = ["inline"] * 6 + ["single"] * 3 + ["multi"]
    digests = {}
    for i in range(count - multipart):
        body = os.urandom(SIZES[kinds[i % len(kinds)]])
        s3.put_object(Bucket=bucket, Key=f"obj/{i:05d}", Body=body)
        digests[f"obj/{i:05d}"] = hashlib.md5(body).hexdigest()
    for i in range(multipart):
        key = f"mp/{i:03d}"
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts, whole = [], hashlib.md5()
        for number, size in ((1, 5 << 20), (2, 700_000)):
            body = os.urandom(size)
            whole.update(body)
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                  Body=body)["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})
        digests[key] = whole.hexdigest()
    return digests


def check_all(s3, bucket: str, digests: dict[str, str]) -> list[str]:
    """Keys whose body is not byte-exact (empty when all are)."""
    return [key for key, digest in digests.items()
            if hashlib.md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
            != digest]


@dataclass
class Traffic:
    """A client that keeps writing new keys, overwriting some, and reading old ones
    until stopped; every request that fails (after the SDK's retries) is counted."""

    s3: object
    bucket: str
    known: dict[str, str]
    written: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        rng = random.Random(7)
        keys = sorted(self.known)
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                if i % 3 == 0:
                    key = f"live/{i:06d}" if i % 2 else f"live/over-{i % 10}"
                    body = os.urandom(rng.choice((2_000, 150_000, 1_200_000)))
                    self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
                    self.written[key] = hashlib.md5(body).hexdigest()
                else:
                    key = rng.choice(keys)
                    data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    if hashlib.md5(data).hexdigest() != self.known[key]:
                        self.failures.append(f"GET {key}: wrong bytes")
                self.requests += 1
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.failures.append(f"{key}: {exc!r}")
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)


def wait_moved(dev: DevCluster, timeout: float = 900) -> None:
    done = admin(dev, "rebalance", "status", "--wait", "--timeout", str(timeout),
                 timeout=timeout + 60)
    assert done.returncode == 0, done.stdout + done.stderr


def process_of(dev: DevCluster, role: str) -> int:
    children = json.loads((dev.data / "processes.json").read_text())["children"]
    return next(c["pid"] for c in children if c["role"] == role)


def logs_of(dev: DevCluster, name: str) -> str:
    return "".join(p.read_text(errors="replace")
                   for p in Path(dev.data / "logs").glob(f"{name}*.log"))


def gateway_gauges(dev: DevCluster, endpoint: str | None = None) -> dict[str, float]:
    """The gateway's /-/metrics samples without labels, by name (of the gateway at
    `endpoint`, if given)."""
    with urllib.request.urlopen(f"{endpoint or dev.endpoint}/-/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if not sample.labels}


def requests_served(dev: DevCluster, *operations: str) -> float:
    """How many requests of `operations` (route templates) the map's serving volumes
    answered, any status, by their own counters: volumes added or removed since the
    cluster started included or left out as the map says."""
    return sum(counter_at(url, "shardgate_requests_total", {"operation": operation})
               for url in map_urls(dev).values() for operation in operations)


def tombstone_holders(dev: DevCluster, without: set[str] = frozenset()
                      ) -> dict[tuple[str, str, str], set[str]]:
    """Which volumes of the map hold each durable version tombstone."""
    holders: dict[tuple[str, str, str], set[str]] = {}
    for vid, url in map_urls(dev).items():
        if vid in without:
            continue
        params: dict[str, str] = {"limit": "1000"}
        while True:
            request = urllib.request.Request(
                f"{url}/objects/tombstones?{urllib.parse.urlencode(params)}",
                headers={"Authorization": f"Bearer {dev.token(vid)}"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                page = json.loads(resp.read())
            for t in page["tombstones"]:
                holders.setdefault((t["incarnation"], t["key"], t["version_id"]),
                                   set()).add(vid)
            if page["next"] is None:
                break
            params = {"limit": "1000", **dict(zip(
                ("after_incarnation", "after_key", "after_version"), page["next"],
                strict=True))}
    return holders


def corrupt_some(data_dir: Path, count: int) -> list[Path]:
    """Flip 16 bytes in the middle of `count` fragment archive files of a volume (an
    archive's CRC32C frames then fail there); the files changed."""
    files = sorted(f for f in (data_dir / "fragments").glob("*/*/*")
                   if f.is_file() and f.stat().st_size > 4096)[:count]
    for path in files:
        with open(path, "r+b") as fh:
            fh.seek(path.stat().st_size // 2)
            original = fh.read(16)
            fh.seek(path.stat().st_size // 2)
            fh.write(bytes(b ^ 0xFF for b in original))
            fh.flush()
            os.fsync(fh.fileno())
    return files
