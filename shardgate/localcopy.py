"""A process's own copy, on its disk, of what it reads from the map store (the cluster
map, bucket records): what it starts from and serves when the store is unreachable."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shardgate import jsonio

log = logging.getLogger("shardgate.map")


def load(path: Path, what: str) -> Any | None:
    """The saved value, or None when there is none or it cannot be read (then logged)."""
    try:
        return jsonio.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s copy %s: %r", what, path, exc)
        return None


def save(path: Path, value: Any, what: str) -> None:
    """Replace the copy atomically (a crash leaves the old one or the new one); a failure
    is logged, not raised: the copy is a fallback, never the truth."""
    tmp = path.with_suffix(f".tmp.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(jsonio.dumps(value))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not persist the %s copy %s: %r", what, path, exc)
