"""Serving one volume with Hypercorn until SIGTERM or SIGINT, then shutting down gracefully."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from shardgate.config import ClusterConfig, ConfigError
from shardgate.memory import tune_allocator
from shardgate.serving import hypercorn_config, run_app
from volume_server.app import create_app
from volume_server.layout import Layout


def listen_address(url: str) -> tuple[str, int]:
    """(host, port) to listen on, from a volume's URL such as `http://127.0.0.1:8101`."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        raise ConfigError(f"volume url {url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigError(f"volume url {url!r}: {exc}") from exc
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host, port


def check_index(path: Path) -> None:
    """Fail with one line naming the file if SQLite cannot read the index (say, a header
    overwritten by garbage): opening the store happens inside the server's start-up, where
    the same error would be a traceback. Reads the header and the schema only, not every
    page, so start-up stays fast on a large index.
    """
    if not path.exists():
        return  # a new volume: the store creates it
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            conn.execute("SELECT name FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"volume index {path} is not a usable SQLite database: {exc}") \
            from exc


def run(config: ClusterConfig, volume_id: str, url: str = "", data_dir: str = "") -> None:
    """Serve `volume_id` from its data directory; returns after a signal. `url` and
    `data_dir` default to the cluster file's entry for the volume, and are required for
    a volume the file does not list (one to be added with `shardgate admin volume add`)."""
    tune_allocator()
    try:
        spec = config.volume(volume_id)
        url, data_dir = url or spec.url, data_dir or spec.data_dir
    except ConfigError:
        if not (url and data_dir):
            raise ConfigError(f"volume {volume_id!r} is not in the cluster file: pass "
                              "--url and --data-dir") from None
    if not data_dir:
        raise ConfigError(f"volume {volume_id!r} has no data_dir")
    host, port = listen_address(url)
    layout = Layout(data_dir, volume_id)
    # A wrong or busy directory fails here, with its message, not mid-startup (checked
    # before locking, so a misconfigured volume leaves another's directory alone). The
    # lock is then held until the store closes, or the process dies.
    layout.check()
    layout.lock()
    try:
        check_index(layout.index_path)
        app = create_app(config, volume_id, data_dir, layout, url=url, follow_map=True,
                         settle_collector=True)
        # HTTP/1.1 only (the volume client speaks nothing else): under Granian that is
        # also what starts the header timeout when a connection opens (serving.py).
        run_app(app, hypercorn_config(host, port, graceful_timeout=10), config.volume_server,
                http1_only=True)
    finally:
        layout.unlock()
