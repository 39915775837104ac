"""The workloads of `shardgate bench`, one module per family; each `run(ctx, rec, repeat)`
measures one repeat on one target and records its rows."""

from __future__ import annotations

from typing import Any

from bench.volumes import ProcessUse


def mbps(nbytes: float, seconds: float) -> float:
    return nbytes / seconds / 1e6


def use_details(use: ProcessUse, nbytes: float) -> dict[str, Any]:
    """Peak RSS and CPU per GB of each process kind, for the processes table."""
    if not use.peak_rss_mib:
        return {}
    return {"peak_rss_mib": use.peak_rss_mib, "cpu_s_per_gb": use.cpu_per_gb(nbytes),
            "kernel_s_per_gb": use.kernel_per_gb(nbytes)}
