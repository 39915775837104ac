"""The volume server lets in only requests with a valid JWT for its id and the right scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shardgate.tokens import mint_token
from tests.unit.volume_support import SECRET, VOLUME, running

pytestmark = pytest.mark.anyio

@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir, authorize=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_denied(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()


async def test_health_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_denied(await client.get("/health"))


async def test_health_with_read_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers=bearer(mint_token(SECRET, VOLUME, "read")))
    assert r.status_code == 200
    answer = r.json()
    assert len(answer.pop("data_id")) == 32
    # a new data directory holds nothing yet: it counts for nothing until rebuilt
    assert answer == {"id": VOLUME, "format": 1, "status": "ok", "clock": "",
                      "rebuilding": True}


async def test_write_token_also_reads(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers=bearer(mint_token(SECRET, VOLUME, "write")))
    assert r.status_code == 200


@pytest.mark.parametrize("header", [
    "Bearer not-a-jwt",
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer " + mint_token("another-secret-0123456789abcdefghij", VOLUME, "write"),
    "Bearer " + mint_token(SECRET, VOLUME, "write", ttl_seconds=-60),
    "Bearer " + mint_token(SECRET, "v2", "write"),
], ids=["garbage", "basic", "empty", "wrong-secret", "expired", "wrong-audience"])
async def test_bad_tokens_are_refused(client: httpx.AsyncClient, header: str) -> None:
    assert_denied(await client.get("/health", headers={"authorization": header}))
    assert_denied(await client.get("/buckets", headers={"authorization": header}))
    assert_denied(await client.put("/stage/s1", content=b"x",
                                   headers={"authorization": header}))


async def test_read_token_cannot_write(client: httpx.AsyncClient) -> None:
    read = bearer(mint_token(SECRET, VOLUME, "read"))
    assert_denied(await client.put("/stage/s1", content=b"abc", headers=read))
    assert_denied(await client.delete("/stage/s1", headers=read))
    assert_denied(await client.post("/objects/commit", json={}, headers=read))
    write = bearer(mint_token(SECRET, VOLUME, "write"))
    assert (await client.put("/stage/s1", content=b"abc", headers=write)).status_code == 200


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope", headers=bearer(mint_token(SECRET, VOLUME, "read")))
    assert r.status_code == 404
    assert "error" in r.json()


async def test_cached_token_still_checks_scope(client: httpx.AsyncClient) -> None:
    token = mint_token(SECRET, VOLUME, "read")
    assert (await client.get("/health", headers=bearer(token))).status_code == 200
    assert (await client.get("/health", headers=bearer(token))).status_code == 200
    assert_denied(await client.delete("/stage/x", headers=bearer(token)))
