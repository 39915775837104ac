"""shardgate.config: parse_config validation, write quorum, the sample files, load_users."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from shardgate.config import (
    ConfigError,
    ErasureSpec,
    User,
    load_config,
    load_users,
    parse_config,
    role_servers,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
SECRET = "0123456789abcdef"  # exactly the 16-character minimum


def raw_config(volumes: int = 6, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "jwt_secret": SECRET,
        "erasure": {"k": 4, "m": 2},
        "volumes": [{"id": f"v{i}", "url": f"http://127.0.0.1:{9100 + i}"}
                    for i in range(1, volumes + 1)],
    }
    raw.update(overrides)
    return raw


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(raw_config())
    assert [v.id for v in config.volumes] == ["v1", "v2", "v3", "v4", "v5", "v6"]
    assert config.volumes[0].weight == 1.0 and config.volumes[0].zone == ""
    assert config.erasure == ErasureSpec(k=4, m=2)
    assert config.gateway.port == 9000 and config.gateway.region == "us-east-1"
    assert config.users == ()
    assert config.jwt_secret == SECRET
    assert config.token_ttl_seconds == 120


def test_config_is_immutable() -> None:
    config = parse_config(raw_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.jwt_secret = "x" * 32  # type: ignore[misc]


@pytest.mark.parametrize("volumes", [None, []])
def test_volumes_are_required(volumes: list | None) -> None:
    raw = raw_config()
    if volumes is None:
        del raw["volumes"]
    else:
        raw["volumes"] = volumes
    with pytest.raises(ConfigError, match="volumes"):
        parse_config(raw)


def test_duplicate_volume_ids_are_refused() -> None:
    raw = raw_config()
    raw["volumes"][3]["id"] = "v1"
    with pytest.raises(ConfigError, match="unique"):
        parse_config(raw)


def test_k_plus_m_needs_that_many_volumes() -> None:
    with pytest.raises(ConfigError, match="k\\+m = 6"):
        parse_config(raw_config(volumes=5))
    assert len(parse_config(raw_config(volumes=6)).volumes) == 6
    assert len(parse_config(raw_config(volumes=9)).volumes) == 9


@pytest.mark.parametrize("erasure", [{"k": 0, "m": 2}, {"k": 4, "m": -1}])
def test_k_and_m_ranges(erasure: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="k >= 1"):
        parse_config(raw_config(erasure=erasure))


@pytest.mark.parametrize("secret", [None, "", "x" * 15])
def test_short_or_missing_jwt_secret_is_refused(secret: str | None) -> None:
    raw = raw_config()
    if secret is None:
        del raw["jwt_secret"]
    else:
        raw["jwt_secret"] = secret
    with pytest.raises(ConfigError, match="jwt_secret"):
        parse_config(raw)


@pytest.mark.parametrize("section", ["volumes", "erasure", "gateway", "users"])
def test_unknown_keys_in_a_section_are_refused(section: str) -> None:
    raw = raw_config()
    if section == "volumes":
        raw["volumes"][0]["wieght"] = 2.0
    elif section == "users":
        raw["users"] = [{"access_key": "a", "secret_key": "s", "role": "admin"}]
    else:
        raw[section] = {**raw.get(section, {}), "bogus": 1}
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_config(raw)


def test_missing_required_volume_field_is_a_config_error() -> None:
    raw = raw_config()
    del raw["volumes"][2]["url"]
    with pytest.raises(ConfigError, match="volumes"):
        parse_config(raw)


def test_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        parse_config(raw_config(erasure=4))


def test_duplicate_access_keys_are_refused() -> None:
    users = [{"access_key": "AK", "secret_key": "one"}, {"access_key": "AK", "secret_key": "two"}]
    with pytest.raises(ConfigError, match="access keys"):
        parse_config(raw_config(users=users))


def test_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        parse_config(raw_config(token_ttl_secs=30))


def test_wrongly_typed_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_config(raw_config(erasure={"k": "4", "m": 2}))


@pytest.mark.parametrize(("k", "m", "quorum"), [
    (4, 2, 4), (2, 2, 3), (1, 1, 2), (8, 4, 8), (3, 0, 3), (2, 3, 3),
])
def test_write_quorum(k: int, m: int, quorum: int) -> None:
    assert ErasureSpec(k=k, m=m).write_quorum == quorum


def test_volume_and_user_lookup() -> None:
    users = [{"access_key": "AK1", "secret_key": "s1", "user_id": "alice"},
             {"access_key": "AK2", "secret_key": "s2"}]
    config = parse_config(raw_config(users=users))
    assert config.volume("v3").url == "http://127.0.0.1:9103"
    with pytest.raises(ConfigError, match="unknown volume"):
        config.volume("v99")
    alice = config.user_by_access_key("AK1")
    assert alice is not None and alice.canonical_id == "alice"
    other = config.user_by_access_key("AK2")
    assert other is not None and other.canonical_id == "AK2"
    assert config.user_by_access_key("nope") is None


def test_load_sample_cluster_config() -> None:
    config = load_config(CONF / "cluster.sample.toml")
    assert [v.id for v in config.volumes] == [f"v{i}" for i in range(1, 7)]
    assert {v.zone for v in config.volumes} == {"rack-a", "rack-b", "rack-c"}
    assert config.volume("v1").data_dir == "/var/lib/shardgate/v1"
    assert config.erasure == ErasureSpec(k=4, m=2, ec_type="isa_l_rs_vand",
                                         segment_size=1 << 20)
    assert config.erasure.write_quorum == 4
    assert config.gateway.port == 9000 and config.gateway.bucket_cache_seconds == 1.0
    assert config.gateway.inline_threshold == 131072
    assert len(config.jwt_secret) >= 16 and config.token_ttl_seconds == 120
    admin = config.user_by_access_key("AKIAEXAMPLEADMIN0001")
    assert admin is not None and admin.canonical_id == "admin"


def test_load_sample_users() -> None:
    users = load_users(CONF / "users.sample.toml")
    assert [u.display_name for u in users] == ["alice", "bob"]
    assert all(isinstance(u, User) and u.secret_key for u in users)
    assert users[1].access_key == "AKIABOB0000000000002"


def test_load_users_without_entries(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text("# nobody here\n")
    with pytest.raises(ConfigError, match="no \\[\\[users\\]\\]"):
        load_users(path)


def test_load_users_unknown_or_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    path.write_text('[[users]]\naccess_key = "a"\nsecret_key = "b"\nadmin = true\n')
    with pytest.raises(ConfigError, match="unknown keys"):
        load_users(path)
    path.write_text('[[users]]\naccess_key = "a"\n')
    with pytest.raises(ConfigError, match="secret_key"):
        load_users(path)


def test_load_users_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_users(tmp_path / "absent.toml")


@pytest.mark.parametrize("loader", [load_config, load_users])
def test_malformed_toml_is_a_config_error(tmp_path: Path, loader: Any) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[users]\naccess_key = \n")
    with pytest.raises(ConfigError):
        loader(path)


@pytest.mark.parametrize("value, ok", [(0, True), (4, True), (6, True), (3, False),
                                       (7, False)])
def test_min_write_fragments_between_k_and_k_plus_m(value: int, ok: bool) -> None:
    raw = raw_config(durability={"min_write_fragments": value})
    if ok:
        assert parse_config(raw).durability.min_write_fragments == value
    else:
        with pytest.raises(ConfigError, match="min_write_fragments"):
            parse_config(raw)


def test_server_choice() -> None:
    """Defaults per role; `server` sets both; a role's own key wins."""
    default = parse_config(raw_config())
    assert (default.gateway_server, default.volume_server) == ("hypercorn", "granian")
    both = parse_config(raw_config(server="granian", gateway={"workers": 2}))
    assert (both.gateway_server, both.volume_server, both.gateway.workers) == (
        "granian", "granian", 2)
    mixed = parse_config(raw_config(server="hypercorn", gateway_server="granian"))
    assert (mixed.gateway_server, mixed.volume_server) == ("granian", "hypercorn")
    for key in ("server", "gateway_server", "volume_server"):
        with pytest.raises(ConfigError, match="must be one of"):
            parse_config(raw_config(**{key: "uvicorn"}))
        with pytest.raises(ConfigError, match="must be one of"):
            parse_config(raw_config(**{key: ""}))
    # The same rule for `shardgate dev`'s flags (None: not given).
    assert role_servers(None) == {"gateway_server": "hypercorn", "volume_server": "granian"}
    assert role_servers("hypercorn", None, "granian") == {"gateway_server": "hypercorn",
                                                          "volume_server": "granian"}
