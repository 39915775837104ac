"""Serving one volume with Hypercorn until SIGTERM or SIGINT, then shutting down gracefully."""

from __future__ import annotations

from urllib.parse import urlsplit

from shardgate.config import ClusterConfig, ConfigError
from shardgate.memory import raise_mmap_threshold
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


def run(config: ClusterConfig, volume_id: str) -> None:
    """Serve `volume_id` from its configured data directory; returns after a signal."""
    raise_mmap_threshold()
    spec = config.volume(volume_id)
    if not spec.data_dir:
        raise ConfigError(f"volume {volume_id!r} has no data_dir")
    host, port = listen_address(spec.url)
    layout = Layout(spec.data_dir, volume_id)
    # A wrong or busy directory fails here, with its message, not mid-startup (checked
    # before locking, so a misconfigured volume leaves another's directory alone). The
    # lock is then held until the store closes, or the process dies.
    layout.check()
    layout.lock()
    try:
        app = create_app(config, volume_id, spec.data_dir, layout)
        run_app(app, hypercorn_config(host, port, graceful_timeout=10))
    finally:
        layout.unlock()
