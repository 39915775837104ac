"""The `shardgate` command: the one module that knows every role."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from erasure.params import check_params
from shardgate.config import ConfigError, load_config, load_users


def check_erasure(k: int, m: int, ec_type: str, segment_size: int) -> None:
    """Refuse unsafe EC parameters before any process starts (erasure.params rules)."""
    try:
        check_params(k, m, ec_type, segment_size)
    except ValueError as exc:
        raise ConfigError(f"erasure parameters: {exc}") from exc


def _ec(value: str) -> tuple[int, int]:
    try:
        k, m = (int(x) for x in value.split("+"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected K+M, e.g. 4+2") from exc
    return k, m


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run a local cluster: one gateway + N volume servers")
    dev.add_argument("--data", default="./shardgate-data", type=Path)
    dev.add_argument("--port", default=9000, type=int)
    dev.add_argument("--volumes", default=6, type=int)
    dev.add_argument("--ec", default=(4, 2), type=_ec, help="K+M, default 4+2")
    dev.add_argument("--users", type=Path, help="TOML file with [[users]] tables")
    dev.add_argument("--tls-cert", default="")
    dev.add_argument("--tls-key", default="")
    dev.add_argument("--segment-size", default=1 << 20, type=int)
    dev.add_argument("--gateway-workers", default=1, type=int,
                     help="gateway worker processes (default 1)")
    gw = sub.add_parser("gateway", help="run one gateway")
    gw.add_argument("--config", required=True, type=Path)
    vol = sub.add_parser("volume", help="run one volume server")
    vol.add_argument("--config", required=True, type=Path)
    vol.add_argument("--id", required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "dev":
            from shardgate.devcluster import DevOptions, run_dev

            if bool(args.tls_cert) != bool(args.tls_key):
                raise ConfigError("--tls-cert and --tls-key go together")
            k, m = args.ec
            check_erasure(k, m, "isa_l_rs_vand", args.segment_size)
            users = load_users(args.users) if args.users else ()
            opts = DevOptions(data=args.data, port=args.port, volumes=args.volumes, k=k, m=m,
                              users=users, tls_cert=args.tls_cert, tls_key=args.tls_key,
                              segment_size=args.segment_size, workers=args.gateway_workers)
            sys.exit(run_dev(opts))
        config = load_config(args.config)
        ec = config.erasure
        check_erasure(ec.k, ec.m, ec.ec_type, ec.segment_size)
        if args.command == "gateway":
            from gateway.serve import run as run_gateway

            run_gateway(config, args.config)
        else:
            from volume_server.serve import run as run_volume

            run_volume(config, args.id)
    except (ConfigError, OSError) as exc:
        print(f"shardgate: {exc}", file=sys.stderr)
        sys.exit(2)
