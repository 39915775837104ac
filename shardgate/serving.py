"""Serve an ASGI app until SIGTERM/SIGINT; shared by every role.

Two servers, chosen per role in the cluster file: Hypercorn (HTTP/1.1, h2c by prior
knowledge or upgrade, h2 over TLS by ALPN) and Granian (Rust HTTP/1.1 and HTTP/2, embedded
in this process's event loop, or as worker processes). Both take their settings from one
Hypercorn `Config` (address, TLS files, the keep-alive clock). Granian's header read
timeout starts when a connection opens only in HTTP/1-only mode without TLS; with HTTP/2
sniffing or a TLS handshake a connection that never sends a byte stays open, which is why
the client-facing gateway defaults to Hypercorn (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

from shardgate.config import ConfigError


def hypercorn_config(host: str, port: int, *, certfile: str = "", keyfile: str = "",
                     **settings: Any) -> Config:
    """Hypercorn settings; `settings` overrides any of them by Hypercorn's name.

    keep_alive_timeout is Hypercorn's one clock for a connection with no request in
    progress: it runs from the connection's start, or the end of its last answer, until a
    request's headers are complete. So it also cuts off a client sending its headers byte
    by byte (slowloris). 75 s outlasts the 60 s idle timeout of common load balancers,
    which must close first. read_timeout stays unset: it times every socket read, and an
    HTTP/1.1 client sends nothing while it downloads a large object or waits for a slow
    answer. A silent request body is cut off by the gateway instead (gateway.body_idle).
    """
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = "-" if os.environ.get("SHARDGATE_ACCESS_LOG") else None
    config.keep_alive_timeout = 75
    config.h11_max_incomplete_size = 64 * 1024
    config.h2_max_inbound_frame_size = 1 << 20
    config.graceful_timeout = 5
    if certfile:
        config.certfile = certfile
        config.keyfile = keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
    for name, value in settings.items():
        setattr(config, name, value)
    if not config.keep_alive_timeout > 0:
        raise ConfigError("the keep-alive timeout must be positive")
    return config


def run_app(app: Any, config: Config, server: str = "hypercorn",
            http1_only: bool = False) -> None:
    """Run until a termination signal arrives, then shut down gracefully; `http1_only`
    serves HTTP/1.1 alone (Granian; Hypercorn always offers h2 too)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
        if server == "granian":
            await _serve_granian(app, config, stop, http1_only)
        else:
            await serve(app, config, shutdown_trigger=stop.wait)

    asyncio.run(main())


def _granian_settings(config: Config, http1_only: bool = False) -> dict[str, Any]:
    """Granian's arguments from Hypercorn's config: address, TLS files, and Hypercorn's
    keep-alive clock as Granian's header read timeout (it cuts off a client that sends
    its headers byte by byte)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    host, _, port = config.bind[0].rpartition(":")
    tls: dict[str, Any] = {}
    if config.certfile:
        tls = {"ssl_cert": Path(config.certfile), "ssl_key": Path(config.keyfile)}
    return dict(address=host.strip("[]"), port=int(port), interface=Interfaces.ASGI,
                http=HTTPModes.http1 if http1_only else HTTPModes.auto,
                websockets=False, backlog=1024, log_access=bool(config.accesslog),
                http1_settings=HTTP1Settings(
                    header_read_timeout=int(config.keep_alive_timeout * 1000)), **tls)


async def _serve_granian(app: Any, config: Config, stop: asyncio.Event,
                         http1_only: bool) -> None:
    """The app under Granian's embedded server, in this process's event loop."""
    from granian.server.embed import Server

    server = Server(app, **_granian_settings(config, http1_only))
    task = asyncio.create_task(server.serve())
    done, _ = await asyncio.wait({task, asyncio.create_task(stop.wait())},
                                 return_when=asyncio.FIRST_COMPLETED)
    if task not in done:
        server.stop()
    await task


def run_workers(factory: str, config: Config, workers: int) -> None:
    """`workers` processes under Granian sharing the listening socket, each building its
    app by calling `factory` ("module:function"); returns once a termination signal has
    stopped them (Granian's main process handles SIGTERM/SIGINT)."""
    from granian.server import Server

    Server(factory, factory=True, workers=workers, **_granian_settings(config)).serve()


def dump_tasks() -> None:
    """SIGUSR1: print every task's await chain to stderr, to see where a request waits."""
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        chain = []
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
            if frame is not None:
                chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        print("TASK", task.get_name(), " <- ".join(chain[-6:]), file=sys.stderr, flush=True)
