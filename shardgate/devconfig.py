"""The cluster file `shardgate dev` writes: its options, and the ports and paths they
become (<data>/cluster.toml, kept across runs for its JWT secret)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from shardgate.config import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ClusterConfig, User

CONFIG_NAME = "cluster.toml"


def free_ports(host: str, count: int, taken: int) -> list[int]:
    """`count` distinct free ports, none of them `taken` (the gateway's): each socket is
    held open until all are chosen, so the kernel cannot hand one out twice."""
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket())
            sock.bind((host, 0))
            if (port := sock.getsockname()[1]) != taken:
                ports.append(port)
        return ports


def default_users() -> tuple[User, ...]:
    return (User(access_key=os.environ.get("SHARDGATE_ACCESS_KEY", DEFAULT_ACCESS_KEY),
                 secret_key=os.environ.get("SHARDGATE_SECRET_KEY", DEFAULT_SECRET_KEY),
                 display_name="shardgate", user_id="shardgate"),)


@dataclass
class DevOptions:
    data: Path
    port: int = 9000
    volumes: int = 6
    k: int = 4
    m: int = 2
    users: tuple[User, ...] = ()
    tls_cert: str = ""
    tls_key: str = ""
    host: str = "127.0.0.1"
    segment_size: int = 1 << 20
    workers: int = 1
    durability: tuple[tuple[str, float], ...] = ()  # [durability] settings to override
    gateway_settings: tuple[tuple[str, float], ...] = ()  # numeric [gateway] overrides
    rebalance_settings: tuple[tuple[str, float], ...] = ()  # [rebalance] overrides
    gateway_server: str = ClusterConfig.gateway_server  # the gateway's HTTP server
    volume_server: str = ClusterConfig.volume_server  # the volume servers' HTTP server
    etcd: tuple[str, ...] = ()  # etcd endpoints for the cluster map (none: embedded)


def write_config(opts: DevOptions) -> Path:
    """Write <data>/cluster.toml, keeping the JWT secret of an earlier run."""
    opts.data.mkdir(parents=True, exist_ok=True)
    path = opts.data / CONFIG_NAME
    secret = secrets.token_hex(32)
    if path.exists():
        with open(path, "rb") as fh:
            secret = tomllib.load(fh).get("jwt_secret", secret)
    users = opts.users or default_users()
    raw = {
        "jwt_secret": secret,
        "erasure": {"k": opts.k, "m": opts.m, "ec_type": "isa_l_rs_vand",
                    "segment_size": opts.segment_size},
        "gateway": {"host": opts.host, "port": opts.port, "tls_cert": opts.tls_cert,
                    "tls_key": opts.tls_key, "workers": opts.workers,
                    **dict(opts.gateway_settings)},
        "volumes": [{"id": f"v{i}", "url": f"http://{opts.host}:{port}",
                     "data_dir": str((opts.data / f"v{i}").resolve())}
                    for i, port in enumerate(free_ports(opts.host, opts.volumes, opts.port),
                                             start=1)],
        "users": [u.__dict__ for u in users],
        "gateway_server": opts.gateway_server,
        "volume_server": opts.volume_server,
    }
    if opts.durability:
        raw["durability"] = dict(opts.durability)
    if opts.rebalance_settings:
        raw["rebalance"] = dict(opts.rebalance_settings)
    if opts.etcd:
        # One etcd may hold several dev clusters: each data directory its own prefix.
        tag = hashlib.sha256(str(opts.data.resolve()).encode()).hexdigest()[:12]
        raw["map"] = {"store": "etcd", "endpoints": list(opts.etcd),
                      "prefix": f"/shardgate/dev-{tag}/"}
    else:
        # Named outright, so that a copy of this file elsewhere (another gateway with
        # other settings) still finds the same map and bucket records.
        raw["map"] = {"path": str((opts.data / "map.sqlite").resolve())}
    with open(path, "wb") as fh:
        tomli_w.dump(raw, fh)
    return path
