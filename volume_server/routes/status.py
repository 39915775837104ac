"""Liveness, status and the heal queue: what an operator or a healer asks a volume about itself."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from shardgate.jsonio import JSONResponse
from volume_server.errors import ApiError
from volume_server.params import field, json_body, query_int, text
from volume_server.routes import store_of
from volume_server.scrub import ScrubReport

MAX_LEASE_SECONDS = 3600


async def health(request: Request) -> JSONResponse:
    store = store_of(request)
    return JSONResponse({"id": store.volume_id, "format": store.format, "status": "ok",
                         "clock": store.clock, "data_id": store.data_id,
                         "rebuilding": store.rebuilding})


async def set_state(request: Request) -> JSONResponse:
    """The healer marks this volume rebuilding (its data was lost) or rebuilt."""
    body = await json_body(request)
    store = store_of(request)
    await store.set_rebuilding(field(body, "rebuilding", bool, False))
    return JSONResponse({"rebuilding": store.rebuilding})


async def get_peers(request: Request) -> JSONResponse:
    return JSONResponse({"peers": await store_of(request).peers()})


async def put_peers(request: Request) -> JSONResponse:
    """Record the data id of volumes as the cluster knows them (majority-read later)."""
    peers = field(await json_body(request), "peers", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in peers.items()):
        raise ApiError(400, "peers maps volume ids to data ids")
    await store_of(request).put_peers(peers)
    return JSONResponse({"stored": len(peers)})


async def heal(request: Request) -> JSONResponse:
    limit = query_int(request, "limit", 1 << 31, 1, 1 << 31)
    store = store_of(request)
    incarnation = request.query_params.get("incarnation")
    if incarnation:  # one bucket's backlog (shardgate admin heal --bucket)
        entries, depth = await store.heal_of(incarnation, limit)
        return JSONResponse({"entries": entries, "depth": depth})
    return JSONResponse({"entries": await store.list_heal(limit),
                         "depth": await store.heal_depth()})


async def queue_heal(request: Request) -> JSONResponse:
    """Entries a gateway found while reading (a fragment failed its checksum)."""
    body = await json_body(request)
    entries = field(body, "entries", list, [])
    store = store_of(request)
    for item in entries:
        if not isinstance(item, dict):
            raise ApiError(400, "heal entries must be objects")
        await store.queue_heal(text(item, "incarnation"), text(item, "key"),
                               text(item, "version_id"),
                               text(item, "archive_id", None, nullable=True),
                               field(item, "index", int, None, nullable=True),
                               text(item, "reason", "", nonempty=False))
    return JSONResponse({"queued": len(entries)})


async def retired(request: Request) -> JSONResponse:
    """Archives superseded but still readable for the grace period, and until when."""
    rows = await store_of(request).retired()
    return JSONResponse({"archives": {a: until for a, until in rows}})


async def heal_done(request: Request) -> JSONResponse:
    """A healer finished a version: drop its entries queued up to `up_to`."""
    body = await json_body(request)
    dropped = await store_of(request).drop_heal(text(body, "incarnation"), text(body, "key"),
                                                text(body, "version_id"),
                                                field(body, "up_to", int, 0))
    return JSONResponse({"dropped": dropped})


async def heal_leases(request: Request) -> JSONResponse:
    """A healer takes, renews or (seconds 0) releases leases on versions it is about to
    heal (volume_server/heal_leases.py): one answer per ref, in order."""
    body = await json_body(request)
    holder = text(body, "holder")
    seconds = field(body, "seconds", (int, float))
    if not 0 <= seconds <= MAX_LEASE_SECONDS:
        raise ApiError(400, f"seconds must be within 0..{MAX_LEASE_SECONDS}")
    refs = field(body, "refs", list)
    if not all(isinstance(r, list) and len(r) == 3 and all(isinstance(p, str) for p in r)
               for r in refs):
        raise ApiError(400, "refs are [incarnation, key, version_id] lists")
    granted = request.app.state.heal_leases.claim(holder, [tuple(r) for r in refs],
                                                  float(seconds))
    return JSONResponse({"granted": granted})


async def status(request: Request) -> JSONResponse:
    """What `shardgate admin status` shows for this volume: COUNT queries and statvfs."""
    store = store_of(request)
    counts = await store.status_counts()
    disk = await store.disk_usage()
    return JSONResponse({"id": store.volume_id, "status": "ok", "clock": store.clock,
                         "data_dir": str(store.layout.root), "disk": disk,
                         "objects": counts["objects"], "pending": counts["pending"],
                         "retired": counts["retired"],
                         "heal": {"depth": counts["heal_depth"],
                                  "versions": counts["heal_versions"]},
                         "last_scrub": _scrub_summary(request.app.state.scrubber.last)})


def _scrub_summary(report: ScrubReport | None) -> dict | None:
    return None if report is None else dict(report.__dict__)


async def scrub_now(request: Request) -> JSONResponse:
    """Run one scrub pass now and answer what it found (operators and tests)."""
    report = await request.app.state.scrubber.run_pass()
    return JSONResponse(_scrub_summary(report))


async def heal_versions(request: Request) -> JSONResponse:
    """Distinct versions with heal entries, for counting degraded objects across volumes."""
    limit = query_int(request, "limit", 10_000, 1, 1_000_000)
    incarnation = request.query_params.get("incarnation") or None
    versions, truncated = await store_of(request).heal_versions(limit, incarnation)
    return JSONResponse({"versions": versions, "truncated": truncated})


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/state", set_state, methods=["POST"]),
    Route("/peers", get_peers, methods=["GET"]),
    Route("/peers", put_peers, methods=["PUT"]),
    Route("/scrub", scrub_now, methods=["POST"]),
    Route("/heal/versions", heal_versions, methods=["GET"]),
    Route("/heal", heal, methods=["GET"]),
    Route("/heal", queue_heal, methods=["POST"]),
    Route("/heal/done", heal_done, methods=["POST"]),
    Route("/heal/leases", heal_leases, methods=["POST"]),
    Route("/retired", retired, methods=["GET"]),
]
