"""The cluster configuration: one typed, immutable object loaded once per process.

Every gateway derives the same ring from it, so it is the only thing the roles share.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ACCESS_KEY = "shardgate"
DEFAULT_SECRET_KEY = "shardgate-secret-key"


class ConfigError(ValueError):
    """The configuration file is missing something or contradicts itself."""


@dataclass(frozen=True)
class VolumeSpec:
    """One volume server: ring nodes are named by `id`, never by URL."""

    id: str
    url: str
    weight: float = 1.0
    zone: str = ""
    data_dir: str = ""


@dataclass(frozen=True)
class ErasureSpec:
    """EC parameters, fixed per cluster (fragments of different ec_types don't mix)."""

    k: int = 4
    m: int = 2
    ec_type: str = "isa_l_rs_vand"
    segment_size: int = 1 << 20

    @property
    def write_quorum(self) -> int:
        """k when k > m, else k + 1 (docs/durability.md)."""
        return self.k if self.k > self.m else self.k + 1


@dataclass(frozen=True)
class User:
    access_key: str
    secret_key: str
    display_name: str = ""
    email: str = ""
    user_id: str = ""

    @property
    def canonical_id(self) -> str:
        return self.user_id or self.access_key


@dataclass(frozen=True)
class GatewaySpec:
    host: str = "127.0.0.1"
    port: int = 9000
    region: str = "us-east-1"
    workers: int = 1
    tls_cert: str = ""
    tls_key: str = ""
    inline_threshold: int = 128 * 1024
    # Recently decoded segments kept per process for other GETs of the same version
    # (gateway/objects/shared_reads.py): concurrent readers of a hot object share them.
    shared_read_bytes: int = 32 << 20
    clock_skew_seconds: int = 900
    bucket_cache_seconds: float = 1.0
    # Bounds against slow or hostile clients (gateway.body_idle, gateway.limits).
    body_idle_timeout_seconds: float = 20.0
    keep_alive_timeout_seconds: float = 75.0
    max_concurrent_requests: int = 256
    max_queued_requests: int = 512
    queue_wait_seconds: float = 2.0
    # A copy or Complete still running after this long answers 200 at once and keeps the
    # connection alive with whitespace until its result (gateway/keepalive.py).
    slow_answer_seconds: float = 2.0
    # A conditional write's claim on its key lasts this long if its gateway dies holding
    # it; meanwhile other conditional writes of the key answer 409 (objects/conditional.py).
    conditional_claim_seconds: float = 30.0


@dataclass(frozen=True)
class DurabilitySpec:
    """How long superseded data stays readable, and when the volumes and healer act."""

    # Archives of a superseded or deleted version stay readable this long, so a reader
    # streaming it while it is overwritten completes byte-exact.
    grace_seconds: float = 900.0
    # A row with no durable notice after this long, and a staged file this old, are
    # taken for the leftovers of a gateway that died: the row is queued for heal and
    # the staged file removed.
    unmarked_seconds: float = 300.0
    # How often each volume's janitor runs and each healer polls the heal queues.
    janitor_interval_seconds: float = 10.0
    heal_interval_seconds: float = 2.0
    # The healer's parallel objects per gateway process.
    heal_concurrency: int = 4
    # A healer heals a version under a lease this long (renewed while it runs) taken
    # from a volume of its placement, so two gateway processes do not heal it at once
    # (0: no leases).
    heal_lease_seconds: float = 30.0
    # A heal's or a move's stage to a volume that stops taking its bytes (a stuck disk or
    # process, not a dead one) is given up after this long without progress, and one
    # whose whole body was sent after this long without an answer: the work is retried,
    # instead of holding its slot for ever. Time spent reading the sources is not counted.
    stage_stall_seconds: float = 30.0
    stage_answer_seconds: float = 60.0
    # Refuse to acknowledge a write held by fewer fragments than this (0: the write
    # quorum, k when k > m). Up to k + m: k + m means every volume of the placement.
    min_write_fragments: int = 0
    # Each volume re-reads and verifies every fragment it holds: a pass every this many
    # seconds (0: never), reading at most this many bytes per second.
    scrub_interval_seconds: float = 86400.0
    # Each gateway's healer sets every volume's index beside the others of each key's
    # placement this often (0: never), healing what one lacks: a row can be missed with
    # no heal entry anywhere (its record lost with a gateway and a volume at once).
    compare_interval_seconds: float = 86400.0
    scrub_bytes_per_second: float = 50e6


@dataclass(frozen=True)
class MapSpec:
    """Where the cluster map lives (docs/cluster-map.md): `embedded` is one SQLite file
    shared by the processes of one host; `etcd` is an etcd cluster at `endpoints`."""

    store: str = "embedded"
    endpoints: tuple[str, ...] = ()
    # The embedded store's file; "" is map.sqlite beside the cluster file.
    path: str = ""
    prefix: str = "/shardgate/"
    # Each process keeps its last map here (a volume: in its data directory) and starts
    # from it when the store is unreachable; "" is the cluster file's directory.
    cache_dir: str = ""
    timeout_seconds: float = 3.0
    # A gateway or volume that stops refreshing its lease this long is no longer live.
    lease_seconds: int = 10
    # Besides watching, every process re-reads the map this often (a stalled watch).
    refresh_seconds: float = 10.0


@dataclass(frozen=True)
class RebalanceSpec:
    """How fast the rebalancer moves versions to a new epoch's placement."""

    # Versions moved per second at most (each: its fragments verified, the moved ones
    # rebuilt on their new volumes, every manifest copy rewritten).
    versions_per_second: float = 200.0
    concurrency: int = 4


@dataclass(frozen=True)
class ClusterConfig:
    volumes: tuple[VolumeSpec, ...]
    erasure: ErasureSpec = field(default_factory=ErasureSpec)
    gateway: GatewaySpec = field(default_factory=GatewaySpec)
    durability: DurabilitySpec = field(default_factory=DurabilitySpec)
    users: tuple[User, ...] = ()
    jwt_secret: str = ""
    token_ttl_seconds: int = 120
    # The HTTP servers the gateway and the volume processes run under (shardgate.serving;
    # docs/decisions.md says why these defaults).
    gateway_server: str = "hypercorn"
    volume_server: str = "granian"
    # Which fragments the volumes write around their page cache (O_DIRECT; see
    # volume_server/direct_writes.py and docs/performance.md): "auto" (parity, which is
    # read only while a data fragment is missing, and every fragment of a bulk write: a
    # multipart part, or a PUT of 64 MiB or more), "parity", "all", or "none".
    volume_direct_writes: str = "auto"
    map: MapSpec = field(default_factory=MapSpec)
    rebalance: RebalanceSpec = field(default_factory=RebalanceSpec)

    def volume(self, volume_id: str) -> VolumeSpec:
        for v in self.volumes:
            if v.id == volume_id:
                return v
        raise ConfigError(f"unknown volume id {volume_id!r}")

    def written_around_cache(self, index: int, bulk: bool = False) -> bool:
        """Whether fragment `index` is staged around its volume's page cache; `bulk`: it
        is part of a bulk write (`is_bulk`; what "auto" sends around the cache whole)."""
        policy = self.volume_direct_writes
        return policy == "all" or (policy != "none" and index >= self.erasure.k) \
            or (policy == "auto" and bulk)

    @staticmethod
    def is_bulk(size: int | None, multipart: bool) -> bool:
        """A multipart part, or a body of at least BULK_WRITE_BYTES."""
        return multipart or (size is not None and size >= BULK_WRITE_BYTES)

    def user_by_access_key(self, access_key: str) -> User | None:
        for u in self.users:
            if u.access_key == access_key:
                return u
        return None

    def display_name(self, canonical_id: str) -> str:
        """The DisplayName S3 answers beside an owner's ID (the ID when it has none)."""
        for u in self.users:
            if u.canonical_id == canonical_id:
                return u.display_name or canonical_id
        return canonical_id


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


_TOP_LEVEL = {"volumes", "erasure", "gateway", "durability", "users", "jwt_secret",
              "token_ttl_seconds", "server", "gateway_server", "volume_server",
              "volume_direct_writes", "map",
              "rebalance"}
MAP_STORES = ("embedded", "etcd")
SERVERS = ("hypercorn", "granian")
DIRECT_WRITES = ("auto", "parity", "all", "none")
# A PUT this large is a bulk write (a checkpoint, a dataset file), as a multipart part is:
# seldom read back from the same volumes' page cache soon, so "auto" writes its data
# fragments around the cache too.
BULK_WRITE_BYTES = 64 << 20


def role_servers(server: str | None, gateway: str | None = None,
                 volume: str | None = None) -> dict[str, str]:
    """The HTTP server of each role: a role's own setting wins over `server` (both
    roles), which wins over the role's default."""
    def pick(own: str | None, default: str) -> str:
        return own if own is not None else server if server is not None else default

    return {"gateway_server": pick(gateway, ClusterConfig.gateway_server),
            "volume_server": pick(volume, ClusterConfig.volume_server)}


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    """Instantiate a config dataclass, refusing unknown keys and wrongly typed values."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    fields = cls.__dataclass_fields__
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    for name, value in raw.items():
        expected = {"str": str, "int": int, "float": (int, float)}.get(str(fields[name].type))
        if expected and (not isinstance(value, expected) or isinstance(value, bool)):
            raise ConfigError(f"{where}: {name} must be of type {fields[name].type}, "
                              f"not {type(value).__name__}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer")
    return value


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse_config(raw: dict[str, Any]) -> ClusterConfig:
    """Build and validate a ClusterConfig from parsed TOML."""
    unknown = set(raw) - _TOP_LEVEL
    if unknown:
        raise ConfigError(f"unknown top-level keys {sorted(unknown)}")
    volumes = tuple(_build(VolumeSpec, v, "[[volumes]]") for v in raw.get("volumes", []))
    if not volumes:
        raise ConfigError("at least one [[volumes]] entry is required")
    if len({v.id for v in volumes}) != len(volumes):
        raise ConfigError("volume ids must be unique")
    erasure = _build(ErasureSpec, _section(raw, "erasure"), "[erasure]")
    if erasure.k < 1 or erasure.m < 0:
        raise ConfigError("[erasure] needs k >= 1 and m >= 0")
    if erasure.k + erasure.m > len(volumes):
        raise ConfigError(
            f"[erasure] k+m = {erasure.k + erasure.m} needs at least that many volumes, "
            f"got {len(volumes)}"
        )
    gateway = _build(GatewaySpec, _section(raw, "gateway"), "[gateway]")
    durability = _build(DurabilitySpec, _section(raw, "durability"), "[durability]")
    if durability.min_write_fragments and not \
            erasure.k <= durability.min_write_fragments <= erasure.k + erasure.m:
        raise ConfigError(f"[durability] min_write_fragments must be 0 or between k = "
                          f"{erasure.k} and k + m = {erasure.k + erasure.m}")
    if durability.stage_stall_seconds <= 0 or durability.stage_answer_seconds <= 0:
        raise ConfigError("[durability] stage_stall_seconds and stage_answer_seconds must "
                          "be > 0")
    users = tuple(_build(User, u, "[[users]]") for u in raw.get("users", []))
    if len({u.access_key for u in users}) != len(users):
        raise ConfigError("user access keys must be unique")
    secret = raw.get("jwt_secret", "")
    if not isinstance(secret, str) or len(secret) < 16:
        raise ConfigError("jwt_secret must be at least 16 characters")
    servers = role_servers(raw.get("server"), raw.get("gateway_server"),
                           raw.get("volume_server"))
    for role, name in servers.items():
        if name not in SERVERS:
            raise ConfigError(f"{role} must be one of {', '.join(SERVERS)}, not {name!r}")
    map_raw = dict(_section(raw, "map"))
    endpoints = map_raw.pop("endpoints", [])
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        raise ConfigError("[map] endpoints must be a list of host:port strings")
    map_spec = replace(_build(MapSpec, map_raw, "[map]"), endpoints=tuple(endpoints))
    if map_spec.store not in MAP_STORES:
        raise ConfigError(f"[map] store must be one of {', '.join(MAP_STORES)}")
    if map_spec.store == "etcd" and not map_spec.endpoints:
        raise ConfigError("[map] store = \"etcd\" needs endpoints = [\"host:port\", ...]")
    if not map_spec.prefix.startswith("/") or not map_spec.prefix.endswith("/"):
        raise ConfigError("[map] prefix must start and end with /")
    rebalance = _build(RebalanceSpec, _section(raw, "rebalance"), "[rebalance]")
    if rebalance.versions_per_second <= 0 or rebalance.concurrency < 1:
        raise ConfigError("[rebalance] needs versions_per_second > 0 and concurrency >= 1")
    return ClusterConfig(
        rebalance=rebalance,
        map=map_spec,
        volumes=volumes,
        erasure=erasure,
        gateway=gateway,
        durability=durability,
        users=users,
        jwt_secret=secret,
        token_ttl_seconds=_positive_int(raw.get("token_ttl_seconds", 120), "token_ttl_seconds"),
        volume_direct_writes=_choice(
            raw.get("volume_direct_writes", ClusterConfig.volume_direct_writes),
            "volume_direct_writes", DIRECT_WRITES),
        **servers,
    )


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def load_config(path: str | Path) -> ClusterConfig:
    """Read a cluster TOML file (see conf/cluster.sample.toml); the map's relative paths
    are taken from the file's directory."""
    config = parse_config(_read_toml(path))
    here = Path(path).resolve().parent
    spec = config.map
    return replace(config, map=replace(
        spec, path=str(here / (spec.path or "map.sqlite")),
        cache_dir=str(here / spec.cache_dir) if spec.cache_dir else str(here)))


def load_users(path: str | Path) -> tuple[User, ...]:
    """Read a users TOML file: `[[users]]` tables, as `shardgate dev --users` takes."""
    raw = _read_toml(path)
    users = tuple(_build(User, u, "[[users]]") for u in raw.get("users", []))
    if not users:
        raise ConfigError(f"{path}: no [[users]] entries")
    return users
