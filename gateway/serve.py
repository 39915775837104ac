"""Run one gateway process from the cluster configuration."""

from __future__ import annotations

import logging

from gateway.app import create_app
from shardgate.config import ClusterConfig
from shardgate.memory import raise_mmap_threshold
from shardgate.serving import hypercorn_config, run_app


def run(config: ClusterConfig) -> None:
    raise_mmap_threshold()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s "
                                                   "%(name)s: %(message)s")
    gw = config.gateway
    hconfig = hypercorn_config(gw.host, gw.port, certfile=gw.tls_cert, keyfile=gw.tls_key)
    run_app(create_app(config), hconfig)
