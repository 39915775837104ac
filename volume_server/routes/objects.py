"""Object rows: commit, durable notice, latest, one version, list."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shardgate import jsonio
from shardgate.jsonio import JSONResponse
from volume_server import attributes, claims, row_reads, version_listing
from volume_server.archives import FRAGMENT_BYTES, prefixed_response
from volume_server.catalog import HealEntry, ObjectCommit, ObjectRow
from volume_server.errors import ApiError, error_status
from volume_server.fileio import LockedFd
from volume_server.layout import check_archive_id, check_stage_id
from volume_server.listing import MAX_LIMIT
from volume_server.params import (
    field,
    json_body,
    number,
    query_flag,
    query_int,
    query_text,
    text,
)
from volume_server.routes import store_of
from volume_server.routes.archives import slice_spec
from volume_server.store import MAX_INLINE_BYTES
from volume_server.tombstones import scan_durable

log = logging.getLogger("shardgate.volume")
MAX_VERSION_ID = 64
MAX_ARCHIVE_OFFSET = 2**62
MAX_CLAIM_SECONDS = 300.0  # a claim outliving its holder blocks conditional writes this long


def _heal_entries(raw: list[Any]) -> tuple[HealEntry, ...]:
    entries = []
    for item in raw:
        if not isinstance(item, dict):
            raise ApiError(400, "heal entries must be objects")
        archive_id = text(item, "archive_id", None, nullable=True)
        if archive_id is not None:
            check_archive_id(archive_id)
        index = field(item, "index", int, None, nullable=True)
        entries.append(HealEntry(archive_id, index, text(item, "reason", "", nonempty=False)))
    return tuple(entries)


def parse_commit(body: dict[str, Any], grace: float = 0.0
                 ) -> tuple[ObjectCommit, str | None, str | None, bool]:
    """The commit body of docs/volume-api.md -> (commit, stage_id, archive_id, inline)."""
    version_id = text(body, "version_id")
    if len(version_id) > MAX_VERSION_ID:
        raise ApiError(400, "version_id is too long")
    stage_id = text(body, "stage_id", None, nullable=True)
    archive_id = text(body, "archive_id", None, nullable=True)
    if stage_id is not None:
        check_stage_id(stage_id)
        if archive_id is None:
            raise ApiError(400, "stage_id needs an archive_id")
    if archive_id is not None:
        check_archive_id(archive_id)
    archives = field(body, "archives", list, [])
    owned = [check_archive_id(a) for a in archives]
    if archive_id is not None and archive_id not in owned:
        owned.append(archive_id)
    summary = field(body, "summary", dict, {})
    manifest = field(body, "manifest", dict, {})
    # A null version unless its manifest says otherwise ("versioned" is the older form).
    null_version = bool(manifest.get("null_version", True)) and not field(
        body, "versioned", bool, False)
    row = ObjectRow(
        incarnation=text(body, "incarnation"),
        key=text(body, "key"),
        version_id=version_id,
        deleted=field(body, "deleted", bool, False),
        manifest=manifest,
        size=field(summary, "size", int, 0),
        etag=text(summary, "etag", "", nonempty=False),
        last_modified=number(summary, "last_modified", 0.0),
        owner=text(summary, "owner", "", nonempty=False),
        archives=tuple(owned),
        null_version=null_version,
    )
    expect = text(body, "expect_newest", None, nullable=True, nonempty=False)
    ignore = field(body, "ignore", list, [])
    if not all(isinstance(v, str) for v in ignore):
        raise ApiError(400, "ignore: version ids")
    commit = ObjectCommit(
        row=row,
        expect_newest=expect,
        ignore=tuple(ignore),
        versioned=not null_version,
        heal=_heal_entries(field(body, "heal", list, [])),
        queued=time.time(),
        durable=field(body, "durable", bool, False),
        grace=grace,
    )
    return commit, stage_id, archive_id, field(body, "inline", bool, False)


def inline_data(body: dict[str, Any], stage_id: str | None, archive_id: str | None,
                inline: bool) -> bytes | None:
    """The archive's bytes when they ride in the commit (`"data"`, base64): a small
    object written in one round trip, kept inline, with no stage."""
    raw = text(body, "data", None, nullable=True, nonempty=False)
    if raw is None:
        return None
    if stage_id is not None or archive_id is None or not inline:
        raise ApiError(400, "data needs inline, an archive_id and no stage_id")
    if len(raw) > MAX_INLINE_BYTES * 4 // 3 + 4:
        raise ApiError(413, "inline data is too large")
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ApiError(400, "data must be base64") from exc


async def commit_object(request: Request) -> JSONResponse:
    """Commit a version (pending); 409 when a conditional write's fence fails."""
    await _commit(request, await json_body(request))
    store = store_of(request)
    return JSONResponse({"committed": True, "clock": store.clock,
                         "rebuilding": store.rebuilding})


MAX_COMMITS = 256


async def commit_objects(request: Request) -> JSONResponse:
    """Body {"commits": [commit body, ...]} (at most 256) -> {"results": [{"committed":
    true} or {"status", "error"} as POST /objects/commit would have answered, ...],
    "clock", "rebuilding"}: the commits a gateway's concurrent writes queued for this
    volume, in one request (and, queued together, one index transaction)."""
    bodies = field(await json_body(request), "commits", list)
    if len(bodies) > MAX_COMMITS or not all(isinstance(b, dict) for b in bodies):
        raise ApiError(400, f"commits: at most {MAX_COMMITS} commit bodies")
    results = await asyncio.gather(*(_commit_result(request, body) for body in bodies))
    store = store_of(request)
    return JSONResponse({"results": results, "clock": store.clock,
                         "rebuilding": store.rebuilding})


async def _commit_result(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    try:
        await _commit(request, body)
    except Exception as exc:  # noqa: BLE001 - answered for this commit alone
        status, message = error_status(exc)
        if status == 500:
            log.error("commit of a batch failed", exc_info=exc)
        return {"status": status, "error": message}
    return {"committed": True}


async def _commit(request: Request, body: dict[str, Any]) -> None:
    commit, stage_id, archive_id, inline = parse_commit(
        body, request.app.state.durability.grace_seconds)
    data = inline_data(body, stage_id, archive_id, inline)
    try:
        await store_of(request).commit_object(commit, stage_id, archive_id, inline, data)
    except claims.NewerVersion as exc:
        raise ApiError(409, str(exc)) from exc


async def claim_key(request: Request) -> JSONResponse:
    """Body {"incarnation", "key", "token", "ttl"} -> {"granted": bool}."""
    body = await json_body(request)
    granted = await store_of(request).claim_key(
        text(body, "incarnation"), text(body, "key"), text(body, "token"),
        min(number(body, "ttl"), MAX_CLAIM_SECONDS))
    return JSONResponse({"granted": granted})


async def release_key(request: Request) -> JSONResponse:
    body = await json_body(request)
    await store_of(request).release_key(text(body, "incarnation"), text(body, "key"),
                                        text(body, "token"))
    return JSONResponse({"released": True})


async def latest(request: Request) -> Response:
    """The key's rows for the read rule. With `archive`, `first`, `last` and `version`
    (a ranged GET that expects `version` to be current), archive bytes [first, last]
    (or their `slices`) follow the rows when this volume's newest row is that version
    (docs/volume-api.md)."""
    incarnation = query_text(request, "incarnation", required=True)
    key = query_text(request, "key", required=True)
    store = store_of(request)
    with_inline = query_flag(request, "inline", False)
    archive_id = request.query_params.get("archive")
    found = None
    if archive_id is None:
        versions = await store.latest(incarnation, key, with_inline)
    else:
        first = query_int(request, "first", 0, 0, MAX_ARCHIVE_OFFSET)
        last = query_int(request, "last", 0, 0, MAX_ARCHIVE_OFFSET)
        slices = slice_spec(request)
        if slices is not None and slices.span != last - first + 1:
            raise ApiError(400, "slices must cover first..last")
        versions, found = await store.latest_and_archive(
            incarnation, key, with_inline, query_text(request, "version", required=True),
            check_archive_id(archive_id))
    try:
        _inline_as_text(versions)
        answer = {"versions": versions, "clock": store.clock, "rebuilding": store.rebuilding}
        if archive_id is None:
            return JSONResponse(answer)
        rows = jsonio.dumps(answer)
    except BaseException:
        if isinstance(found, LockedFd):
            found.close()
        raise
    return prefixed_response(rows, found, first, last, slices)


MAX_LATEST_KEYS = 1000


async def latest_batch(request: Request) -> JSONResponse:
    """Body {"keys": [[incarnation, key, inline], ...]} (at most 1000) -> {"answers":
    [rows of each key, as GET /objects/latest gives them], "clock", "rebuilding"}: the
    rows of many keys a gateway's concurrent requests asked for, in one request."""
    raw = field(await json_body(request), "keys", list)
    if len(raw) > MAX_LATEST_KEYS or not all(
            isinstance(k, list) and len(k) == 3 and isinstance(k[0], str) and k[0]
            and isinstance(k[1], str) and k[1] and isinstance(k[2], bool) for k in raw):
        raise ApiError(400, f"keys: at most {MAX_LATEST_KEYS} [incarnation, key, inline]"
                            " triples")
    store = store_of(request)
    answers = await store.latest_many([(a, b, c) for a, b, c in raw])
    for versions in answers:
        _inline_as_text(versions)
    return JSONResponse({"answers": answers, "clock": store.clock,
                         "rebuilding": store.rebuilding})


def _inline_as_text(versions: list[dict[str, Any]]) -> None:
    """Inline fragments as base64 for the JSON answer, counted as fragment bytes sent."""
    for row in versions:
        if "inline" in row:
            FRAGMENT_BYTES.inc(sum(len(data) for data in row["inline"].values()))
            row["inline"] = {archive: base64.b64encode(data).decode("ascii")
                             for archive, data in row["inline"].items()}


async def repair(request: Request) -> JSONResponse:
    """The healer's commit (same body as /objects/commit): insert or replace, durable."""
    commit, stage_id, archive_id, inline = parse_commit(
        await json_body(request), request.app.state.durability.grace_seconds)
    store = store_of(request)
    await store.repair_object(commit, stage_id, archive_id, inline)
    return JSONResponse({"repaired": True, "clock": store.clock})


async def roll_back(request: Request) -> JSONResponse:
    body = await json_body(request)
    await store_of(request).roll_back(text(body, "incarnation"), text(body, "key"),
                                      text(body, "version_id"))
    return JSONResponse({"rolled_back": True})


async def hand_off(request: Request) -> JSONResponse:
    """The rebalancer's release of a version this volume no longer places (it was
    verified on the key's new placement first): row dropped, archives retired."""
    body = await json_body(request)
    await store_of(request).hand_off(text(body, "incarnation"), text(body, "key"),
                                     text(body, "version_id"),
                                     request.app.state.durability.grace_seconds)
    return JSONResponse({"handed_off": True})


MAX_NOTICES = 1000


async def durable(request: Request) -> JSONResponse:
    """The gateway's notice that a version reached its write quorum (docs/volume-api.md),
    or a batch of them as `{"notices": [...]}` (one transaction on the index writer)."""
    body = await json_body(request)
    store = store_of(request)
    grace = request.app.state.durability.grace_seconds
    if "notices" not in body:
        found = await store.mark_durable(
            text(body, "incarnation"), text(body, "key"), text(body, "version_id"),
            _heal_entries(field(body, "heal", list, [])), grace)
        return JSONResponse({"found": found, "clock": store.clock})
    raw = field(body, "notices", list)
    if not 0 < len(raw) <= MAX_NOTICES or not all(isinstance(n, dict) for n in raw):
        raise ApiError(400, f"notices must be 1 to {MAX_NOTICES} objects")
    notices = [(text(n, "incarnation"), text(n, "key"), text(n, "version_id"),
                _heal_entries(field(n, "heal", list, []))) for n in raw]
    found_each = await store.mark_durable_many(notices, grace)
    return JSONResponse({"found": found_each, "clock": store.clock})


async def scan(request: Request) -> JSONResponse:
    """A page of (incarnation, key, version_id) in row order, after row id `after`."""
    rows = await store_of(request).index.read(
        row_reads.scan_keys, query_int(request, "after", 0, 0, 1 << 62),
        query_int(request, "limit", 1000, 1, 10_000))
    return JSONResponse({"rows": rows, "next": rows[-1]["id"] if rows else None})


async def tombstones(request: Request) -> JSONResponse:
    """A page of durable version tombstones after (after_incarnation, after_key,
    after_version), in that order; `next` is the last one's triple, or null at the end."""
    limit = query_int(request, "limit", 1000, 1, 10_000)
    after = (query_text(request, "after_incarnation"), query_text(request, "after_key"),
             query_text(request, "after_version"))
    found = await store_of(request).index.read(scan_durable, after, limit)
    last = found[-1] if len(found) == limit else None
    return JSONResponse({"tombstones": found, "next": last and [
        last["incarnation"], last["key"], last["version_id"]]})


async def digests(request: Request) -> JSONResponse:
    """Body {"keys": [[incarnation, key], ...]} (at most 1000) -> {"versions": [newest
    durable version id or "", ...]} in the same order."""
    raw = field(await json_body(request), "keys", list, [])
    if len(raw) > 1000 or not all(isinstance(k, list) and len(k) == 2
                                  and all(isinstance(p, str) for p in k) for k in raw):
        raise ApiError(400, "keys: at most 1000 [incarnation, key] pairs")
    found = await store_of(request).index.read(row_reads.newest_durable,
                                               [(a, b) for a, b in raw])
    return JSONResponse({"versions": found})


async def version(request: Request) -> JSONResponse:
    """One version's row; with `as_list=1` always 200, {"versions": [row] or []} (the
    read rule's evidence for GET ?versionId=)."""
    found = await store_of(request).version(query_text(request, "incarnation", required=True),
                                            query_text(request, "key", required=True),
                                            query_text(request, "version_id", required=True))
    if query_text(request, "as_list") == "1":
        return JSONResponse({"versions": [] if found is None else [found],
                             "rebuilding": store_of(request).rebuilding})
    if found is None:
        return JSONResponse({"error": "no such version",
                             "rebuilding": store_of(request).rebuilding}, 404)
    return JSONResponse({**found, "rebuilding": store_of(request).rebuilding})


async def forget(request: Request) -> JSONResponse:
    """Tombstone one version: pending first, then durable (the row goes) once the gateway
    has the write quorum; {"found": whether this volume held the version}."""
    body = await json_body(request)
    found = await store_of(request).forget_version(
        text(body, "incarnation"), text(body, "key"), text(body, "version_id"),
        field(body, "durable", bool, False), _heal_entries(field(body, "heal", list, [])),
        request.app.state.durability.grace_seconds)
    return JSONResponse({"found": found})


async def nulls(request: Request) -> JSONResponse:
    """Like /objects/latest, over the key's null rows only (GET ?versionId=null)."""
    store = store_of(request)
    versions = await store.index.read(row_reads.nulls,
                                      query_text(request, "incarnation", required=True),
                                      query_text(request, "key", required=True))
    return JSONResponse({"versions": versions, "clock": store.clock,
                         "rebuilding": store.rebuilding})


async def list_versions(request: Request) -> JSONResponse:
    """A page of every version, delete marker and tombstone in (key, newest first)
    order after (key_marker, version_marker): ListObjectVersions."""
    store = store_of(request)
    page = await store.index.read(
        version_listing.list_versions, query_text(request, "incarnation", required=True),
        query_text(request, "prefix"), query_text(request, "key_marker"),
        query_text(request, "version_marker"), query_text(request, "delimiter"),
        query_int(request, "limit", MAX_LIMIT, 0, 1 << 31))
    return JSONResponse({**page, "rebuilding": store.rebuilding})


async def set_attribute(request: Request) -> JSONResponse:
    """An in-place attribute change (tags) of one version, kept if its stamp is newest;
    {"found": false} when this volume lacks the version."""
    body = await json_body(request)
    if "value" not in body:
        raise ApiError(400, "value: required")
    found = await store_of(request).index.write(
        attributes.set_attribute, text(body, "incarnation"), text(body, "key"),
        text(body, "version_id"), text(body, "name"), text(body, "stamp"), body["value"])
    return JSONResponse({"found": found})


async def list_objects(request: Request) -> JSONResponse:
    page = await store_of(request).list_objects(
        query_text(request, "incarnation", required=True),
        query_text(request, "prefix"),
        query_text(request, "start_after"),
        query_text(request, "delimiter"),
        query_int(request, "limit", MAX_LIMIT, 0, 1 << 31),
    )
    return JSONResponse({**page, "rebuilding": store_of(request).rebuilding})


routes = [
    Route("/objects/commit", commit_object, methods=["POST"]),
    Route("/objects/commits", commit_objects, methods=["POST"]),
    Route("/objects/latest", latest, methods=["GET"]),
    Route("/objects/latest", latest_batch, methods=["POST"]),
    Route("/objects/durable", durable, methods=["POST"]),
    Route("/objects/repair", repair, methods=["POST"]),
    Route("/objects/rollback", roll_back, methods=["POST"]),
    Route("/objects/handoff", hand_off, methods=["POST"]),
    Route("/objects/version", version, methods=["GET"]),
    Route("/objects/scan", scan, methods=["GET"]),
    Route("/objects/tombstones", tombstones, methods=["GET"]),
    Route("/objects/digests", digests, methods=["POST"]),
    Route("/objects/list", list_objects, methods=["GET"]),
    Route("/objects/attribute", set_attribute, methods=["POST"]),
    Route("/objects/forget", forget, methods=["POST"]),
    Route("/objects/claim", claim_key, methods=["POST"]),
    Route("/objects/release", release_key, methods=["POST"]),
    Route("/objects/nulls", nulls, methods=["GET"]),
    Route("/objects/versions", list_versions, methods=["GET"]),
]
