"""Run one gateway (one process, or several worker processes) from the cluster config."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from hypercorn.run import run as hypercorn_run

from gateway.app import create_app
from gateway.asgi import CONFIG_ENV
from shardgate.config import ClusterConfig
from shardgate.memory import tune_allocator
from shardgate.metrics_dir import MULTIPROC_ENV
from shardgate.serving import hypercorn_config, run_app, run_workers


def run(config: ClusterConfig, config_path: Path) -> None:
    tune_allocator()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s "
                                                   "%(name)s: %(message)s")
    gw = config.gateway
    hconfig = hypercorn_config(gw.host, gw.port, certfile=gw.tls_cert, keyfile=gw.tls_key,
                               keep_alive_timeout=gw.keep_alive_timeout_seconds)
    if gw.workers <= 1:
        run_app(create_app(config, settle_collector=True), hconfig, config.gateway_server)
        return
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve())
    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        # The workers' counters go to files here and /-/metrics sums them (any worker
        # may answer the scrape); the operator's directory, if set, was emptied by the CLI.
        own_dir = tempfile.mkdtemp(prefix="shardgate-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    try:
        if config.gateway_server == "granian":
            run_workers("gateway.asgi:create", hconfig, gw.workers)
        else:
            hconfig.workers = gw.workers
            hconfig.application_path = "gateway.asgi:create()"
            hypercorn_run(hconfig)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
