"""Fixtures: one real `shardgate dev` cluster per test session (plus a TLS one).

With `--map-store etcd` every cluster these fixtures start keeps its cluster map and
bucket records in one real etcd started for the session (each cluster under its own
prefix), so the same tests run on both map stores; `--server granian` (or hypercorn)
runs every process of those clusters under that server instead of each role's default.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardgate.config import SERVERS
from tests.e2e.cluster import DevCluster, free_port
from tests.e2e.etcd import Etcd

USERS = {
    "alice": ("AKIAALICE0000000001", "alice-secret-key-0000000000000000000001"),
    "bob": ("AKIABOB00000000000002", "bob-secret-key-00000000000000000000000002"),
}


def write_users(path: Path) -> Path:
    lines = []
    for name, (access, secret) in USERS.items():
        lines += ["[[users]]", f'access_key = "{access}"', f'secret_key = "{secret}"',
                  f'display_name = "{name}"', f'email = "{name}@example.com"',
                  f'user_id = "{name}-id"', ""]
    path.write_text("\n".join(lines))
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--map-store", choices=("embedded", "etcd"), default="embedded",
                     help="where the test clusters keep their map: the embedded store "
                          "(default) or a real etcd started for the session")
    parser.addoption("--server", choices=SERVERS, default=None,
                     help="the HTTP server of every process of the fixtures' clusters "
                          "(default: each role's default)")


_ETCD: list[Etcd] = []
_SERVER: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    _SERVER[:] = [config.getoption("--server") or ""]


@pytest.fixture(scope="session", autouse=True)
def map_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start the session's etcd when the clusters are to use one."""
    if request.config.getoption("--map-store") == "etcd":
        _ETCD.append(Etcd(tmp_path_factory.mktemp("session-etcd")).start())
    yield request.config.getoption("--map-store")
    while _ETCD:
        _ETCD.pop().stop()


def session_cluster_args() -> list[str]:
    """The `shardgate dev` arguments that put a cluster on the session's etcd, if any,
    and under the session's HTTP server."""
    etcd = ["--etcd", ",".join(_ETCD[0].endpoints)] if _ETCD else []
    return etcd + (["--server", _SERVER[0]] if _SERVER and _SERVER[0] else [])


@contextlib.contextmanager
def own_cluster(tmp_path_factory: pytest.TempPathFactory, name: str,
                durability: tuple[str, ...] = (), env: dict[str, str] | None = None,
                gateway: tuple[str, ...] = ()) -> Iterator[DevCluster]:
    """A `shardgate dev` cluster of a test module's own (its heal backlog, settings and
    failures touch no other test); `durability` and `gateway` hold KEY=VALUE overrides."""
    root = tmp_path_factory.mktemp(name)
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     extra_args=[a for d in durability for a in ("--durability", d)]
                     + [a for g in gateway for a in ("--gateway-setting", g)]
                     + session_cluster_args(),
                     env=env or {}).start()
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with own_cluster(tmp_path_factory, "dev") as dev:
        yield dev


@pytest.fixture(scope="session")
def s3(cluster: DevCluster):
    return cluster.client(*USERS["alice"])


@pytest.fixture(scope="session")
def s3_bob(cluster: DevCluster):
    return cluster.client(*USERS["bob"])


@pytest.fixture(scope="session")
def s3x(cluster: DevCluster):
    """A client that never retries: every failure the gateway gives is seen as it is."""
    return cluster.client(*USERS["alice"], retries={"total_max_attempts": 1},
                          read_timeout=60)


@pytest.fixture
def bucket(s3) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def self_signed(directory: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="session")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("devtls")
    tls = self_signed(root)
    dev = DevCluster(root / "data", free_port(), write_users(root / "users.toml"),
                     tls=tls, extra_args=session_cluster_args()).start()
    yield dev
    dev.stop()
