"""shardgate.tokens: volume-request JWTs (audience, scope, expiry) and the per-process cache."""

from __future__ import annotations

import time
from types import SimpleNamespace

import jwt
import pytest

from shardgate import tokens
from shardgate.tokens import ISSUER, TokenCache, TokenError, mint_token, verify_token

SECRET = "token-test-secret-0123456789abcdef"
OTHER = "another-secret-0123456789abcdef-xyz"


def test_round_trip_returns_claims() -> None:
    token = mint_token(SECRET, "v1", "read", ttl_seconds=60)
    claims = verify_token(SECRET, token, "v1", "read")
    assert claims["aud"] == "v1" and claims["scope"] == "read" and claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] == 60


def test_wrong_audience_is_refused() -> None:
    token = mint_token(SECRET, "v1", "write")
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "v2", "write")


def test_wrong_secret_is_refused() -> None:
    token = mint_token(OTHER, "v1", "write")
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "v1", "write")


def test_expired_token_is_refused() -> None:
    token = mint_token(SECRET, "v1", "read", ttl_seconds=-10)
    with pytest.raises(TokenError, match="expired"):
        verify_token(SECRET, token, "v1", "read")


def test_read_scope_cannot_write() -> None:
    token = mint_token(SECRET, "v1", "read")
    with pytest.raises(TokenError, match="does not allow 'write'"):
        verify_token(SECRET, token, "v1", "write")


def test_write_scope_can_read_and_write() -> None:
    token = mint_token(SECRET, "v1", "write")
    assert verify_token(SECRET, token, "v1", "read")["scope"] == "write"
    assert verify_token(SECRET, token, "v1", "write")["scope"] == "write"


def test_unknown_scope_cannot_be_minted() -> None:
    with pytest.raises(ValueError, match="scope"):
        mint_token(SECRET, "v1", "admin")


@pytest.mark.parametrize("claims", [
    {"iss": ISSUER, "aud": "v1", "scope": "admin"},                 # unknown scope
    {"iss": ISSUER, "aud": "v1"},                                   # no scope
    {"iss": "someone-else", "aud": "v1", "scope": "write"},         # other issuer
])
def test_foreign_claims_are_refused(claims: dict) -> None:
    token = jwt.encode({**claims, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "v1", "read")


def test_token_without_expiry_is_refused() -> None:
    token = jwt.encode({"iss": ISSUER, "aud": "v1", "scope": "write"}, SECRET,
                       algorithm="HS256")
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "v1", "read")


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(SECRET, token, "v1", "read")


class FakeTime:
    """Stands in for the `time` module inside shardgate.tokens."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.start = time.time() - 150  # tests move forward up to 100 s; iat stays in the past

    def time(self) -> float:
        return self.start + self.offset

    def monotonic(self) -> float:
        return 1000.0 + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=fake.time, monotonic=fake.monotonic))
    return fake


def test_cache_reuses_a_token_for_half_its_life(clock: FakeTime) -> None:
    cache = TokenCache(SECRET, ttl_seconds=120)
    first = cache.get("v1", "write")
    clock.offset = 59
    assert cache.get("v1", "write") is first
    clock.offset = 61
    second = cache.get("v1", "write")
    assert second != first
    claims = verify_token(SECRET, second, "v1", "write")
    assert claims["iat"] == int(clock.start + 61)
    clock.offset = 100
    assert cache.get("v1", "write") is second


def test_cache_keys_on_volume_and_scope(clock: FakeTime) -> None:
    clock.offset = 100
    cache = TokenCache(SECRET, ttl_seconds=120)
    a = cache.get("v1", "read")
    b = cache.get("v1", "write")
    c = cache.get("v2", "read")
    assert len({a, b, c}) == 3
    assert verify_token(SECRET, c, "v2", "read")["aud"] == "v2"
    with pytest.raises(TokenError):
        verify_token(SECRET, a, "v1", "write")
