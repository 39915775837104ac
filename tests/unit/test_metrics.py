"""Prometheus metrics: names and labels by convention, the request middleware, the gateway's
operation labels, `/-/metrics` without SigV4, and `/-/ready` tied to the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import gateway.metrics  # noqa: F401 - registers the gateway's counters
from gateway.app import create_app
from gateway.metrics import operation_of
from shardgate.config import ClusterConfig, MapSpec, User, VolumeSpec
from shardgate.metrics import RequestMetrics, set_operation
from volume_server.metrics import gauges

pytestmark = pytest.mark.anyio

FORBIDDEN_LABELS = {"bucket", "key", "path", "url", "upload_id", "version_id"}
SNAPSHOT = {"objects": 5, "pending": 1, "retired": 2, "heal_depth": 3, "heal_versions": 1,
            "disk": {"total": 100, "used": 40, "free": 50}}


def ours(registry: Any) -> list[Any]:
    return [m for m in registry.collect() if m.name.startswith("shardgate")]


def test_names_are_prefixed_in_base_units_and_labels_are_bounded() -> None:
    families = ours(REGISTRY) + ours(gauges("v1", SNAPSHOT))
    names = {f.name for f in families}
    assert {"shardgate_requests", "shardgate_request_duration_seconds",
            "shardgate_request_bytes", "shardgate_response_bytes",
            "shardgate_healed_fragments", "shardgate_checksum_failures",
            "shardgate_heal_queue_depth"} <= names
    for family in families:
        assert family.name.startswith("shardgate_")
        if family.type == "counter":  # the family name drops the suffix; samples carry it
            assert all(s.name.endswith("_total") for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")
        if "bytes" in family.name:
            assert family.name.endswith("_bytes")
        for sample in family.samples:
            assert not FORBIDDEN_LABELS & set(sample.labels), sample


def test_volume_gauges_report_the_snapshot() -> None:
    text = generate_latest(gauges("v3", SNAPSHOT)).decode()
    values = {s.name: (s.labels, s.value) for f in text_string_to_metric_families(text)
              for s in f.samples}
    assert values["shardgate_heal_queue_depth"] == ({"volume": "v3"}, 3)
    assert values["shardgate_object_rows"][1] == 5
    assert values["shardgate_pending_rows"][1] == 1
    assert values["shardgate_retired_archives"][1] == 2
    assert values["shardgate_disk_used_bytes"][1] == 40
    assert values["shardgate_disk_free_bytes"][1] == 50


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def call(app: Callable, scope: dict, body: bytes = b"") -> list[dict]:
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def scope(path: str = "/b/k", method: str = "PUT") -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": [(b"host", b"127.0.0.1")]}


async def test_middleware_counts_status_duration_and_bytes_under_the_handlers_operation(
        ) -> None:
    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        set_operation(scope, "TestPut")
        message = await receive()
        assert message["body"] == b"12345"
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"de"})

    before = (sample("shardgate_requests_total", operation="TestPut", status="201"),
              sample("shardgate_request_bytes_total", operation="TestPut"),
              sample("shardgate_response_bytes_total", operation="TestPut"),
              sample("shardgate_request_duration_seconds_count", operation="TestPut"))
    sent = await call(RequestMetrics(app, lambda s: "never asked"), scope(), b"12345")
    assert sent[0]["status"] == 201
    after = (sample("shardgate_requests_total", operation="TestPut", status="201"),
             sample("shardgate_request_bytes_total", operation="TestPut"),
             sample("shardgate_response_bytes_total", operation="TestPut"),
             sample("shardgate_request_duration_seconds_count", operation="TestPut"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 5, 5, 1]


async def test_middleware_names_unhandled_requests_and_counts_exceptions_as_500() -> None:
    async def early(scope: dict, receive: Callable, send: Callable) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def broken(scope: dict, receive: Callable, send: Callable) -> None:
        raise RuntimeError("boom")

    before = sample("shardgate_requests_total", operation="Early", status="503")
    await call(RequestMetrics(early, lambda s: "Early"), scope())
    assert sample("shardgate_requests_total", operation="Early", status="503") == before + 1

    before = sample("shardgate_requests_total", operation="Broken", status="500")
    with pytest.raises(RuntimeError):
        await call(RequestMetrics(broken, lambda s: "Broken"), scope())
    assert sample("shardgate_requests_total", operation="Broken", status="500") == before + 1

    def failing(scope: dict) -> str:
        raise ValueError("cannot name it")

    before = sample("shardgate_requests_total", operation="Unknown", status="503")
    await call(RequestMetrics(early, failing), scope())
    assert sample("shardgate_requests_total", operation="Unknown", status="503") == before + 1


def test_gateway_operation_names_come_from_the_router() -> None:
    name = operation_of({"/-/health": "Health"})
    assert name(scope("/-/health", "GET")) == "Health"
    assert name(scope("/bucket/key", "PUT")) == "PutObject"
    assert name(scope("/bucket/key", "GET")) == "GetObject"
    assert name(scope("/bucket", "PUT")) == "CreateBucket"
    assert name(scope("/", "GET")) == "ListBuckets"


def gateway_config(directory: Path) -> ClusterConfig:
    """Volumes nobody listens on: the healer's polls fail at once, and nothing else runs;
    the cluster map in a file of the test's own."""
    return ClusterConfig(volumes=tuple(VolumeSpec(id=f"v{i}", url=f"http://127.0.0.1:{i}")
                                       for i in range(1, 7)),
                         users=(User("AKIATEST", "secret-key-for-tests"),),
                         jwt_secret="gateway-test-secret-0123456789abcdef",
                         map=MapSpec(path=str(directory / "map.sqlite"),
                                     cache_dir=str(directory)))


async def test_ready_follows_the_lifespan_and_metrics_need_no_signature(tmp_path) -> None:
    app = create_app(gateway_config(tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        not_started = await client.get("/-/ready")
        assert not_started.status_code == 503
        assert (await client.get("/-/health")).status_code == 200
        lifespan = _Lifespan(app)
        await lifespan.start()
        try:
            ready = await client.get("/-/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            metrics = await client.get("/-/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["content-type"].startswith("text/plain")
            assert "shardgate_requests_total" in metrics.text
            assert 'operation="Ready",status="200"' in metrics.text
            anonymous = await client.put("/some-bucket")
            assert anonymous.status_code == 403  # creating a bucket needs a signature
        finally:
            await lifespan.stop()
        assert (await client.get("/-/ready")).status_code == 503


class _Lifespan:
    """Drive an ASGI app's lifespan by hand (httpx's transport does not)."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app({"type": "lifespan", "asgi": {}},
                                                 self.inbox.get, self.outbox.put))
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.outbox.get())["type"] == "lifespan.startup.complete"

    async def stop(self) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        assert (await self.outbox.get())["type"] == "lifespan.shutdown.complete"
        assert self.task is not None
        await self.task
