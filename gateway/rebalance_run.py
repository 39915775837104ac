"""Run the rebalancer as a process of its own (`shardgate rebalancer --config C`).

It needs no port: it follows the cluster map, talks to volumes like a gateway, and
stops on SIGTERM or SIGINT. Any number may run; one leads at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from gateway.objects.cluster import Cluster
from gateway.objects.rebalancer import Rebalancer
from shardgate import faults
from shardgate.config import ClusterConfig
from shardgate.mapview import MapView


async def _main(config: ClusterConfig) -> None:
    cluster = Cluster.build(config)
    view = MapView(config, "rebalancer", f"{socket.gethostname()}-{os.getpid()}")
    view.listeners.append(cluster.adopt)
    await view.start()
    cluster.adopt(view.current)
    await cluster.volumes.start()
    rebalancer = Rebalancer(cluster, view)
    task = asyncio.create_task(rebalancer.run_forever())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await cluster.volumes.close()
        await view.stop()


def run(config: ClusterConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rebalancer %(levelname)s "
                                                   "%(name)s: %(message)s")
    faults.arm_from_env()
    asyncio.run(_main(config))
