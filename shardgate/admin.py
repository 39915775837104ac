"""`shardgate admin status|heal`: ask every volume directly how the cluster is doing.

The command needs only the cluster file: it mints the volumes' read tokens from its
`jwt_secret`, so it works with every gateway down. Healing itself is automatic (every
gateway runs a healer); `heal` shows its progress and can wait for it to finish.
Exit status: 0 healthy (every volume answered, heal backlog 0), 1 not (or `--wait` timed
out), 2 a usage error (unknown bucket, bad configuration).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

import aiohttp
from tqdm import tqdm

from shardgate.admin_report import (
    DOWN,
    ERROR,
    Backlog,
    ClusterReport,
    VolumeReport,
    build_report,
    render,
    to_json,
)
from shardgate.bucketmap import read_bucket
from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import open_store
from shardgate.tokens import mint_token

REQUEST_TIMEOUT_SECONDS = 5.0  # a volume silent this long is reported down
CONNECT_TIMEOUT_SECONDS = 2.0
HEAL_VERSIONS_LIMIT = 10_000  # per volume; past it "degraded" is a lower bound
POLL_SECONDS = 1.0
QUIET_REPORT_SECONDS = 10.0  # without a terminal, one progress line this often


class AdminError(Exception):
    """Something the operator asked for cannot be answered (exit status 2)."""


class VolumeSilent(Exception):
    """No answer: refused, reset or timed out. The volume counts as down."""


class VolumeAnsweredBadly(Exception):
    """An answer other than the one asked for (401 from a wrong secret, 500, not JSON)."""


class Volumes:
    """An aiohttp session that asks volumes with freshly minted read tokens."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Volumes:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS,
                                        connect=CONNECT_TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, spec: VolumeSpec, path: str, params: Mapping[str, str] | None = None,
                  allow_404: bool = False) -> Any:
        """The JSON answer; None for a 404 when `allow_404`."""
        assert self._session is not None, "use Volumes as an async context manager"
        token = mint_token(self.config.jwt_secret, spec.id, "read",
                           self.config.token_ttl_seconds)
        try:
            async with self._session.get(spec.url.rstrip("/") + path, params=params,
                                         headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise VolumeSilent(_reason(exc)) from exc
        if status == 404 and allow_404:
            return None
        if status != 200:
            raise VolumeAnsweredBadly(f"answered {status}: {body[:200].decode(errors='replace')}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise VolumeAnsweredBadly("answered with something other than JSON") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {REQUEST_TIMEOUT_SECONDS:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect: {exc.os_error}"
    return str(exc) or type(exc).__name__


# status


async def _volume_status(volumes: Volumes, spec: VolumeSpec
                         ) -> tuple[VolumeReport, list[dict] | None, bool]:
    """The volume's report, its versions with heal entries (None if unknown), truncated."""
    try:
        body = await volumes.get(spec, "/status")
        report = VolumeReport.from_status(spec.id, spec.url, body)
    except VolumeSilent as exc:
        return VolumeReport(spec.id, spec.url, DOWN, str(exc)), None, False
    except VolumeAnsweredBadly as exc:
        return VolumeReport(spec.id, spec.url, ERROR, str(exc)), None, False
    except (KeyError, TypeError):
        return VolumeReport(spec.id, spec.url, ERROR, "unexpected status answer"), None, False
    try:
        listed = await volumes.get(spec, "/heal/versions",
                                   {"limit": str(HEAL_VERSIONS_LIMIT)})
        return report, listed["versions"], bool(listed["truncated"])
    except (VolumeSilent, VolumeAnsweredBadly, KeyError, TypeError):
        return report, None, True  # up, but its list is unknown: the count is a lower bound


async def collect_status(config: ClusterConfig) -> ClusterReport:
    async with Volumes(config) as volumes:
        answers = await asyncio.gather(*(_volume_status(volumes, spec)
                                         for spec in config.volumes))
    return build_report((a[0] for a in answers), (a[1] for a in answers if a[1] is not None),
                        config.erasure.k, config.erasure.m,
                        lists_truncated=any(a[2] for a in answers))


def run_status(config: ClusterConfig, as_json: bool, out: TextIO = sys.stdout) -> int:
    report = asyncio.run(collect_status(config))
    if as_json:
        json.dump(to_json(report), out, indent=2)
        out.write("\n")
    else:
        print(render(report), file=out)
    return report.exit_code


# heal


async def bucket_incarnation(config: ClusterConfig, name: str) -> str:
    """The bucket's current incarnation, as the map store holds it."""
    store = open_store(config.map)
    try:
        record, _ = await read_bucket(store, config.map, name)
    except MapUnavailable as exc:
        raise AdminError(f"the map store is unreachable: {exc}") from exc
    finally:
        await store.close()
    if record is None or record["deleted"]:
        raise AdminError(f"no bucket {name!r}")
    return record["incarnation"]


async def poll_backlog(volumes: Volumes, config: ClusterConfig,
                       incarnation: str | None) -> Backlog:
    params = {"limit": "1"}
    if incarnation:
        params["incarnation"] = incarnation
    answers = await asyncio.gather(*(volumes.get(spec, "/heal", params)
                                     for spec in config.volumes), return_exceptions=True)
    return Backlog({spec.id: None if isinstance(a, BaseException) else int(a["depth"])
                    for spec, a in zip(config.volumes, answers, strict=True)})


def _per_volume(backlog: Backlog) -> str:
    return ", ".join(f"{vid}: {'not answering' if d is None else d}"
                     for vid, d in backlog.depths.items())


async def _heal(config: ClusterConfig, bucket: str | None, wait: bool, timeout: float,
                out: TextIO, err: TextIO) -> int:
    async with Volumes(config) as volumes:
        incarnation = None
        scope = "all buckets"
        if bucket:
            incarnation = await bucket_incarnation(config, bucket)
            scope = f"bucket {bucket}"
        backlog = await poll_backlog(volumes, config, incarnation)
        if not wait:
            print(f"{scope}: {backlog.describe()}", file=out)
            print(f"  {_per_volume(backlog)}", file=out)
            return 0 if backlog.done else 1
        return await _wait(volumes, config, incarnation, backlog, timeout, scope, out, err)


async def _wait(volumes: Volumes, config: ClusterConfig, incarnation: str | None,
                backlog: Backlog, timeout: float, scope: str, out: TextIO,
                err: TextIO) -> int:
    """Poll until the backlog is 0 on every volume, showing progress; 1 after `timeout`.

    The bar's total is the largest backlog seen, so entries queued meanwhile (a read
    that found a corrupt fragment) grow it rather than move it backwards."""
    start = time.monotonic()
    deadline = start + timeout
    last_note = start
    bar = tqdm(total=backlog.total, unit="entry", desc=f"healing {scope}", file=err,
               disable=not err.isatty(), dynamic_ncols=True)
    try:
        while True:
            bar.total = max(bar.total, backlog.total)
            bar.n = bar.total - backlog.total
            bar.set_postfix_str(backlog.describe(), refresh=False)
            bar.refresh()
            if backlog.done:
                break
            now = time.monotonic()
            if now >= deadline:
                bar.close()
                print(f"{scope}: timed out after {timeout:g} s: {backlog.describe()}",
                      file=out)
                print(f"  {_per_volume(backlog)}", file=out)
                return 1
            if bar.disable and now - last_note >= QUIET_REPORT_SECONDS:
                print(f"{scope}: {backlog.describe()}", file=err, flush=True)
                last_note = now
            await asyncio.sleep(min(POLL_SECONDS, deadline - now))
            backlog = await poll_backlog(volumes, config, incarnation)
    finally:
        bar.close()
    print(f"{scope}: heal backlog 0 on all {len(config.volumes)} volumes after "
          f"{time.monotonic() - start:.1f} s", file=out)
    return 0


def run_heal(config: ClusterConfig, bucket: str | None, wait: bool, timeout: float,
             out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    return asyncio.run(_heal(config, bucket, wait, timeout, out, err))
