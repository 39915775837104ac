"""The deployment files (docker-compose.yml, conf/k8s/, conf/multi-host/) cannot run here
(no container engine): check what can be checked. Each parses; every shardgate command
they run is one the CLI accepts (the same commands the end-to-end tests run), and every
cluster file they carry loads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from shardgate.cli import build_parser
from shardgate.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
ROLES = {"volume", "gateway", "rebalancer", "admin"}


def accepted(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command in ROLES


def test_compose_runs_accepted_commands_with_a_cluster_file_that_loads():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"etcd1", "etcd2", "etcd3", "gateway-a", "rebalancer"} <= set(services)
    ours = {name: s for name, s in services.items() if s.get("image") == "shardgate:latest"}
    assert sum(s["command"][0] == "volume" for s in ours.values()) == 6
    for service in ours.values():
        accepted(service["command"])
        mounts = [m.split(":")[0] for m in service["volumes"]]
        assert "./conf/compose/cluster.toml" in mounts
    config = load_config(ROOT / "conf/compose/cluster.toml")
    assert config.map.store == "etcd" and len(config.map.endpoints) == 3
    assert {f"v{i}" for i in range(1, 7)} == {v.id for v in config.volumes}


def test_kubernetes_manifests_parse_and_run_accepted_commands():
    docs = list(yaml.safe_load_all((ROOT / "conf/k8s/shardgate.yaml").read_text()))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("StatefulSet", "shardgate-volume") in kinds
    assert ("StatefulSet", "shardgate-etcd") in kinds
    assert ("Deployment", "shardgate-gateway") in kinds and ("Service", "shardgate") in kinds
    volumes = next(d for d in docs if d["metadata"]["name"] == "shardgate-volume"
                   and d["kind"] == "StatefulSet")
    assert volumes["spec"]["volumeClaimTemplates"]  # persistent volumes
    for doc in docs:
        if doc["kind"] not in ("StatefulSet", "Deployment"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["image"] == "shardgate:latest":
                accepted([a.replace("$(POD_NAME)", "shardgate-volume-0")
                          for a in container["args"]])
    secret = next(d for d in docs if d["kind"] == "Secret")
    config = parse_config(tomllib.loads(secret["stringData"]["cluster.toml"]))
    assert config.map.store == "etcd" and len(config.volumes) == 6


def test_the_multi_host_sample_loads_with_three_zones():
    config = load_config(ROOT / "conf/multi-host/cluster.toml")
    assert config.map.store == "etcd" and len(config.map.endpoints) == 3
    assert {v.zone for v in config.volumes} == {"a", "b", "c"}
