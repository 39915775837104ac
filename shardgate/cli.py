"""The `shardgate` command: the one module that knows every role."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from erasure.params import check_params
from shardgate.config import (
    SERVERS,
    ClusterConfig,
    ConfigError,
    load_config,
    load_users,
    role_servers,
)
from shardgate.metrics_dir import leave_multiprocess_mode, prepare_from_env


def check_erasure(k: int, m: int, ec_type: str, segment_size: int) -> None:
    """Refuse unsafe EC parameters before any process starts (erasure.params rules)."""
    try:
        check_params(k, m, ec_type, segment_size)
    except ValueError as exc:
        raise ConfigError(f"erasure parameters: {exc}") from exc


def _setting(value: str) -> tuple[str, float]:
    """KEY=NUMBER, for --durability (validated with the rest of the cluster file)."""
    key, sep, number = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {value!r}")
    try:
        return key, int(number) if number.lstrip("-").isdigit() else float(number)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {number!r} is not a number") from exc


def _ec(value: str) -> tuple[int, int]:
    try:
        k, m = (int(x) for x in value.split("+"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected K+M, e.g. 4+2") from exc
    return k, m


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Append '(default: X)' to every option's help, except where there is no value to
    show (None or ''): those options say in words what happens without them."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default == "":
            return action.help
        return super()._get_help_string(action)


def package_version() -> str:
    """The installed distribution's version, so `--version` never drifts from it."""
    try:
        return metadata.version("shardgate")
    except metadata.PackageNotFoundError:
        return "unknown (not installed; run scripts/dev or pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardgate", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run a local cluster: one gateway + N volume servers",
                         formatter_class=HelpFormatter)
    dev.add_argument("--data", default="./shardgate-data", type=Path, metavar="DIR",
                     help="directory for config, logs and volume data (one dev per directory)")
    dev.add_argument("--port", default=9000, type=int, metavar="N",
                     help="gateway port on 127.0.0.1")
    dev.add_argument("--volumes", default=6, type=int, metavar="N",
                     help="number of volume servers")
    dev.add_argument("--ec", default="4+2", type=_ec, metavar="K+M",
                     help="erasure code K+M: K data and M parity fragments per stripe")
    dev.add_argument("--users", type=Path, metavar="FILE",
                     help="TOML file with [[users]] tables (default: one user from "
                          "SHARDGATE_ACCESS_KEY / SHARDGATE_SECRET_KEY, or the built-in pair)")
    dev.add_argument("--tls-cert", default="", metavar="FILE",
                     help="PEM certificate: serve HTTPS with h2 by ALPN (default: plain HTTP)")
    dev.add_argument("--tls-key", default="", metavar="FILE",
                     help="PEM private key for --tls-cert (default: none)")
    dev.add_argument("--segment-size", default=1 << 20, type=int, metavar="BYTES",
                     help="bytes per erasure-coded segment")
    dev.add_argument("--gateway-workers", default=1, type=int, metavar="N",
                     help="gateway worker processes")
    dev.add_argument("--durability", action="append", default=[], type=_setting,
                     metavar="KEY=VALUE",
                     help="override a [durability] setting of the cluster file, e.g. "
                          "grace_seconds=60 (repeatable; default: none)")
    dev.add_argument("--gateway-setting", action="append", default=[], type=_setting,
                     metavar="KEY=VALUE",
                     help="override a numeric [gateway] setting of the cluster file, e.g. "
                          "slow_answer_seconds=0 (repeatable; default: none)")
    dev.add_argument("--rebalance-setting", action="append", default=[], type=_setting,
                     metavar="KEY=VALUE",
                     help="override a [rebalance] setting of the cluster file, e.g. "
                          "versions_per_second=50 (repeatable; default: none)")
    dev.add_argument("--server", default=None, choices=SERVERS,
                     help="the HTTP server of every process (default: the two below; "
                          "docs/performance.md compares them)")
    dev.add_argument("--gateway-server", default=None, choices=SERVERS,
                     help=f"the gateway's HTTP server (default: {ClusterConfig.gateway_server})")
    dev.add_argument("--volume-server", default=None, choices=SERVERS,
                     help=f"the volume servers' HTTP server (default: "
                          f"{ClusterConfig.volume_server})")
    dev.add_argument("--etcd", default="", metavar="HOST:PORT[,HOST:PORT...]",
                     help="keep the cluster map in this etcd (default: in "
                          "DIR/map.sqlite, with no extra server)")
    gw = sub.add_parser("gateway", help="run one gateway", formatter_class=HelpFormatter)
    gw.add_argument("--config", required=True, type=Path, metavar="FILE",
                    help="cluster TOML file (required)")
    vol = sub.add_parser("volume", help="run one volume server", formatter_class=HelpFormatter)
    vol.add_argument("--config", required=True, type=Path, metavar="FILE",
                     help="cluster TOML file (required)")
    vol.add_argument("--id", required=True,
                     help="this volume's id: one of the cluster file's [[volumes]], or a new "
                          "one to add with `shardgate admin volume add` (required)")
    vol.add_argument("--url", default="", metavar="URL",
                     help="where this volume listens, http://HOST:PORT (default: its "
                          "[[volumes]] entry's url; required for a volume not listed there)")
    vol.add_argument("--data-dir", default="", metavar="DIR",
                     help="its data directory (default: its [[volumes]] entry's data_dir; "
                          "required for a volume not listed there)")
    reb = sub.add_parser("rebalancer", help="run the rebalancer: moves fragments when "
                                            "volumes are added, drained or removed",
                         formatter_class=HelpFormatter)
    reb.add_argument("--config", required=True, type=Path, metavar="FILE",
                     help="cluster TOML file (required)")
    add_admin_parser(sub)
    # Everything after `bench` goes to bench/cli.py's own parser (`shardgate bench --help`),
    # so the bench package is imported only when the command runs.
    bench = sub.add_parser("bench", help="benchmark a local cluster (or --endpoint) beside "
                                         "its ceilings; see `shardgate bench --help`",
                           add_help=False, prefix_chars="\0")
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


ADMIN_EPILOG = """exit status: 0 when every volume answered and the heal backlog is 0; 1 when a
volume is down or answered wrongly, the backlog is not 0, or heal --wait timed out; 2 for a
usage error (bad configuration, unknown bucket)."""


def add_admin_parser(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="see and drive a running cluster: status, heal",
                           formatter_class=HelpFormatter, epilog=ADMIN_EPILOG,
                           description="Ask every volume directly (read tokens minted from "
                                       "the cluster file's jwt_secret).")
    admin.add_argument("--config", required=True, type=Path, metavar="FILE",
                       help="cluster TOML file (required)")
    what = admin.add_subparsers(dest="admin_command", required=True)
    status = what.add_parser("status", help="each volume up or down, disk, rows, heal backlog",
                             formatter_class=HelpFormatter, epilog=ADMIN_EPILOG)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    heal = what.add_parser("heal", help="heal backlog; --wait for it to reach 0",
                           formatter_class=HelpFormatter, epilog=ADMIN_EPILOG,
                           description="Healing is automatic (every gateway runs a healer); "
                                       "this shows its progress.")
    heal.add_argument("--bucket", metavar="NAME",
                      help="only this bucket's entries (default: every bucket's)")
    heal.add_argument("--wait", action="store_true",
                      help="show progress until the backlog is 0 on every volume")
    heal.add_argument("--timeout", default=600.0, type=float, metavar="SECONDS",
                      help="with --wait: give up (exit 1) after this long")
    volume = what.add_parser("volume", help="add, drain or remove a volume (a new ring "
                                            "epoch; the rebalancer moves fragments)",
                             formatter_class=HelpFormatter)
    change = volume.add_subparsers(dest="volume_command", required=True)
    add = change.add_parser("add", help="add a running volume to the map",
                            formatter_class=HelpFormatter)
    add.add_argument("volume_id")
    add.add_argument("--url", required=True, metavar="URL",
                     help="where it listens, http://HOST:PORT (required)")
    add.add_argument("--weight", default=1.0, type=float, metavar="W",
                     help="its share of the ring relative to the others")
    add.add_argument("--zone", default="", metavar="Z",
                     help="its failure domain (default: none)")
    for name, text in (("drain", "move every fragment off a volume (it keeps serving "
                                 "reads until the move is finished)"),
                       ("remove", "remove a drained volume, or one that is dead (its "
                                  "fragments are rebuilt from the others)")):
        change.add_parser(name, help=text, formatter_class=HelpFormatter).add_argument(
            "volume_id")
    rebalance = what.add_parser("rebalance", help="the move of fragments to a new epoch",
                                formatter_class=HelpFormatter)
    rebalance_what = rebalance.add_subparsers(dest="rebalance_command", required=True)
    rstatus = rebalance_what.add_parser(
        "status", help="progress; exit 0 once no fragment is left to move",
        formatter_class=HelpFormatter)
    rstatus.add_argument("--wait", action="store_true",
                         help="show a progress bar until the move is finished")
    rstatus.add_argument("--timeout", default=3600.0, type=float, metavar="SECONDS",
                         help="with --wait: give up (exit 1) after this long")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        try:
            from bench.cli import main as run_bench
        except ImportError as exc:
            print(f"shardgate bench: {exc} (pip install 'shardgate[bench]' from a checkout)",
                  file=sys.stderr)
            sys.exit(2)
        sys.exit(run_bench(args.bench_args))
    try:
        if args.command == "dev":
            from shardgate.devcluster import run_dev
            from shardgate.devconfig import DevOptions

            if bool(args.tls_cert) != bool(args.tls_key):
                raise ConfigError("--tls-cert and --tls-key go together")
            k, m = args.ec
            check_erasure(k, m, "isa_l_rs_vand", args.segment_size)
            users = load_users(args.users) if args.users else ()
            opts = DevOptions(data=args.data, port=args.port, volumes=args.volumes, k=k, m=m,
                              users=users, tls_cert=args.tls_cert, tls_key=args.tls_key,
                              segment_size=args.segment_size, workers=args.gateway_workers,
                              durability=tuple(args.durability),
                              gateway_settings=tuple(args.gateway_setting),
                              rebalance_settings=tuple(args.rebalance_setting),
                              **role_servers(args.server, args.gateway_server,
                                             args.volume_server),
                              etcd=tuple(e for e in args.etcd.split(",") if e))
            sys.exit(run_dev(opts))
        config = load_config(args.config)
        ec = config.erasure
        check_erasure(ec.k, ec.m, ec.ec_type, ec.segment_size)
        if args.command == "admin":
            sys.exit(_admin(config, args))
        if args.command == "rebalancer":
            from gateway.rebalance_run import run as run_rebalancer

            run_rebalancer(config)
            return
        if args.command == "gateway":
            prepare_from_env()  # before the first import of prometheus_client
            from gateway.serve import run as run_gateway

            run_gateway(config, args.config)
        else:
            leave_multiprocess_mode()
            from volume_server.serve import run as run_volume

            run_volume(config, args.id, args.url, args.data_dir)
    except (ConfigError, OSError) as exc:
        print(f"shardgate: {exc}", file=sys.stderr)
        sys.exit(2)


def _admin(config: ClusterConfig, args: argparse.Namespace) -> int:
    """`shardgate admin ...`; its exit status (see ADMIN_EPILOG)."""
    from shardgate.admin import AdminError, run_heal, run_status
    from shardgate.admin_map import mapped_config, run_rebalance_status, run_volume_change

    try:
        if args.admin_command == "status":
            return run_status(mapped_config(config), args.json)
        if args.admin_command == "volume":
            if args.volume_command == "add":
                return run_volume_change(config, "add", args.volume_id, args.url,
                                         args.weight, args.zone)
            return run_volume_change(config, args.volume_command, args.volume_id)
        if args.admin_command == "rebalance":
            return run_rebalance_status(config, args.wait, args.timeout)
        return run_heal(mapped_config(config), args.bucket, args.wait, args.timeout)
    except AdminError as exc:
        print(f"shardgate admin: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
