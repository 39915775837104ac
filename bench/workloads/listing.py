"""Workload 7: ListObjectsV2 over many keys spread over 100 "dirs/", 1,000 keys a page,
without a delimiter (a flat walk) and with one (the root's prefixes, then each dir): page
time p50/p99 and the whole walk's time. Every listing is checked against the keys made."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from urllib.parse import urlencode

from bench.context import BUCKET, LIST_PREFIX, Ctx, Recorder
from bench.crt import Outcome, closed_loop
from bench.stats import percentile
from bench.verify import WrongData, check_put

PREFIX = LIST_PREFIX
SETUP_CONCURRENCY = 32


def keys(ctx: Ctx) -> list[str]:
    """Every key under the prefix, sorted: list_keys of them, or more when the small-object
    workload wrote more."""
    return sorted(ctx.list_key(i) for i in ctx.listed)


def setup(ctx: Ctx) -> None:
    """The keys workload 4 has not written yet, 4 KiB each (measured: cheaper than empty
    objects on shardgate), made with the fast generator."""
    todo = [i for i in range(ctx.plan.list_keys) if i not in ctx.listed]
    body = str(ctx.sources.small)

    def puts() -> Iterator[Callable[[], Future[Outcome]]]:
        for i in todo:
            yield lambda i=i: ctx.crt.put_file(ctx.path(ctx.list_key(i)), body, 4096)

    for outcome in closed_loop(puts(), SETUP_CONCURRENCY).outcomes:
        check_put(outcome, 4096)
    ctx.listed.update(todo)


def _text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if child.tag.rpartition("}")[2] == name:
            return child.text or ""
    return None


def _all(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if c.tag.rpartition("}")[2] == name]


def walk(ctx: Ctx, prefix: str, delimiter: str | None, page_ms: list[float]
         ) -> tuple[list[str], list[str]]:
    """Every page of one listing; returns (keys, common prefixes) and appends page times."""
    found, prefixes, token = [], [], None
    while True:
        query = {"list-type": "2", "prefix": prefix, "max-keys": str(ctx.plan.list_page)}
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        outcome = ctx.crt.get_body(f"/{BUCKET}?{urlencode(sorted(query.items()))}").result()
        if outcome.error or outcome.status != 200:
            raise WrongData(f"ListObjectsV2: {outcome.error or outcome.status}")
        page_ms.append(outcome.seconds * 1e3)
        root = ET.fromstring(outcome.body)
        page = [_text(c, "Key") or "" for c in _all(root, "Contents")]
        page += [_text(c, "Prefix") or "" for c in _all(root, "CommonPrefixes")]
        if len(page) > ctx.plan.list_page:
            raise WrongData(f"a page of {len(page)} entries, max-keys {ctx.plan.list_page}")
        found += [_text(c, "Key") or "" for c in _all(root, "Contents")]
        prefixes += [_text(c, "Prefix") or "" for c in _all(root, "CommonPrefixes")]
        if _text(root, "IsTruncated") != "true":
            return found, prefixes
        token = _text(root, "NextContinuationToken")
        if not token:
            raise WrongData("a truncated page without NextContinuationToken")


def run(ctx: Ctx, rec: Recorder, repeat: int) -> None:
    ctx.once("list", lambda: setup(ctx))
    made = sorted(keys(ctx))
    flat_ms: list[float] = []
    found, _ = walk(ctx, PREFIX, None, flat_ms)
    if found != made:
        raise WrongData(f"flat listing: {len(found)} keys, expected {len(made)} in order")
    _record(rec, ctx, "flat", flat_ms)
    delim_ms: list[float] = []
    _, dirs = walk(ctx, PREFIX, "/", delim_ms)
    want_dirs = sorted({k.rpartition("/")[0] + "/" for k in made})
    if dirs != want_dirs:
        raise WrongData(f"{len(dirs)} common prefixes, expected {len(want_dirs)}")
    found = []
    for d in dirs:
        found += walk(ctx, d, "/", delim_ms)[0]
    if found != made:
        raise WrongData(f"listing by dir: {len(found)} keys, expected {len(made)}")
    _record(rec, ctx, "delim", delim_ms)


def _record(rec: Recorder, ctx: Ctx, mode: str, page_ms: list[float]) -> None:
    details = {"pages": len(page_ms)}
    rec.add(f"7.list.{mode}.p50", ctx.name, percentile(page_ms, 50), **details)
    rec.add(f"7.list.{mode}.p99", ctx.name, percentile(page_ms, 99), **details)
    rec.add(f"7.list.{mode}.total", ctx.name, sum(page_ms) / 1e3, **details)
