"""Entry point for gateway worker processes: `gateway.asgi:create()`.

With `[gateway] workers > 1` the server (Granian or Hypercorn) spawns that many processes
sharing the listening socket; each builds its own app from the file named by
SHARDGATE_CONFIG. pyeclib keeps the GIL while encoding, so processes, not threads, are
how a gateway uses several cores.
"""

from __future__ import annotations

import logging
import os

from gateway.app import create_app
from shardgate.config import load_config
from shardgate.memory import tune_allocator

CONFIG_ENV = "SHARDGATE_CONFIG"


def create():  # noqa: ANN201 - the ASGI app type is Starlette's, wrapped
    tune_allocator()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s")
    return create_app(load_config(os.environ[CONFIG_ENV]), settle_collector=True)
