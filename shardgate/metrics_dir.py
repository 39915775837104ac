"""Where a gateway's worker processes keep their Prometheus counters (PROMETHEUS_MULTIPROC_DIR).

prometheus_client picks its storage when first imported, so the directory must exist and
be emptied before any module that defines a metric is imported; this module imports
nothing of prometheus_client for that reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(path: str | Path) -> Path:
    """Create the directory, removing what an earlier run left in it: the files of dead
    processes would otherwise be added to this run's counters."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def prepare_from_env() -> Path | None:
    """For a gateway about to start: empty the directory the environment names, if any."""
    configured = os.environ.get(MULTIPROC_ENV)
    return prepare(configured) if configured else None


def leave_multiprocess_mode() -> None:
    """For a volume: it is one process, and its metrics must not mix with a gateway's files
    when an operator exported the variable for every role."""
    os.environ.pop(MULTIPROC_ENV, None)
    os.environ.pop(MULTIPROC_ENV.lower(), None)
