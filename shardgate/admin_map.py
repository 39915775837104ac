"""`shardgate admin volume add|drain|remove` and `shardgate admin rebalance status`.

Membership changes are compare-and-set writes of the cluster map (shardgate/clustermap.py
says which are refused and why); the rebalancer does the moving, and its progress is in
the map store for `rebalance status` to show.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from tqdm import tqdm

from shardgate.clustermap import (
    SERVING,
    ClusterMap,
    MapRefused,
    add_volume,
    drain_volume,
    remove_volume,
)
from shardgate.config import ClusterConfig, VolumeSpec
from shardgate.mapstore import MapUnavailable
from shardgate.mapview import open_store, read_or_seed, read_progress, update_map


def mapped_config(config: ClusterConfig) -> ClusterConfig:
    """The config with the map's serving volumes in place of the cluster file's seed
    (what `admin status` and `admin heal` ask); the seed if the store is unreachable."""
    async def read() -> ClusterMap:
        store = open_store(config.map)
        try:
            return (await read_or_seed(store, config))[0]
        finally:
            await store.close()
    try:
        current = asyncio.run(read())
    except MapUnavailable as exc:
        print(f"shardgate admin: the map store is unreachable, asking the cluster file's "
              f"volumes: {exc}", file=sys.stderr)
        return config
    return replace(config, volumes=tuple(VolumeSpec(v.id, v.url, v.weight, v.zone)
                                         for v in current.volumes if v.state in SERVING))


def run_volume_change(config: ClusterConfig, action: str, volume_id: str, url: str = "",
                      weight: float = 1.0, zone: str = "") -> int:
    """Apply one membership change; 0 when the map has it, 1 when refused."""
    changes: dict[str, Callable[[ClusterMap], ClusterMap]] = {
        "add": lambda m: add_volume(m, volume_id, url, weight, zone),
        "drain": lambda m: drain_volume(m, volume_id),
        "remove": lambda m: remove_volume(m, volume_id),
    }

    async def change() -> ClusterMap:
        store = open_store(config.map)
        try:
            return await update_map(store, config, changes[action])
        finally:
            await store.close()
    try:
        new = asyncio.run(change())
    except MapRefused as exc:
        print(f"shardgate admin: refused: {exc}", file=sys.stderr)
        return 1
    except MapUnavailable as exc:
        print(f"shardgate admin: the map store is unreachable, nothing changed: {exc}",
              file=sys.stderr)
        return 1
    moving = " (fragments now move: `shardgate admin rebalance status --wait`)" \
        if new.moving else ""
    print(f"volume {volume_id}: {new.volume(volume_id).state}, cluster map epoch "
          f"{new.epoch}{moving}")
    return 0


async def _status(config: ClusterConfig) -> tuple[ClusterMap, dict | None]:
    store = open_store(config.map)
    try:
        current, _ = await read_or_seed(store, config)
        return current, await read_progress(store, config.map, current.epoch)
    finally:
        await store.close()


def describe(current: ClusterMap, progress: dict | None) -> str:
    """One paragraph: the epoch, each volume's state, and the move's progress."""
    lines = [f"cluster map epoch {current.epoch}: " + ", ".join(
        f"{v.id} {v.state}" for v in current.volumes if v.state != "gone")]
    if not current.moving:
        lines.append("no move in progress: nothing left to move")
    elif progress is None:
        lines.append("move pending: no rebalancer has started it yet")
    else:
        lines.append(f"move {progress['phase']}: {progress['moved']} versions moved, "
                     f"{progress['scanned']} rows walked of about {_total(progress)}")
    return "\n".join(lines)


def _total(progress: dict) -> int:
    return sum(s["rows"] for s in progress.get("sources", {}).values())


def run_rebalance_status(config: ClusterConfig, wait: bool, timeout: float) -> int:
    """0 once no fragment is left to move; 1 while a move runs (or --wait timed out)."""
    try:
        current, progress = asyncio.run(_status(config))
        if not wait or not current.moving:
            print(describe(current, progress))
            return 1 if current.moving else 0
        deadline = time.monotonic() + timeout
        with tqdm(total=_total(progress or {}) or None, unit="rows", file=sys.stdout,
                  desc=f"epoch {current.epoch}") as bar:
            while current.moving:
                if time.monotonic() > deadline:
                    print(describe(current, progress))
                    return 1
                time.sleep(1.0)
                current, progress = asyncio.run(_status(config))
                if progress:
                    bar.total = _total(progress) or bar.total
                    bar.n = progress["scanned"]
                    bar.set_postfix(moved=progress["moved"], phase=progress["phase"])
                    bar.refresh()
        print(describe(current, progress))
        return 0
    except MapUnavailable as exc:
        print(f"shardgate admin: the map store is unreachable: {exc}", file=sys.stderr)
        return 1
