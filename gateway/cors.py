"""Bucket CORS: Put/Get/DeleteBucketCors, OPTIONS preflights and the CORS headers of
answers to requests that carry an Origin.

A browser asks before a cross-origin request (OPTIONS with Origin and
Access-Control-Request-Method); the first rule whose origin, method and headers all match
answers it, as in S3. Preflights carry no signature (browsers never sign them), so they
are answered without authentication, from the bucket's rules alone. The rules are a
bucket setting; PutBucketCors answers once every gateway's cached copy of the old rules
has expired.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from gateway.context import RequestContext
from gateway.errors import S3Error
from gateway.objects.bucket_records import BucketRecord
from gateway.xml import child_text, children, document, local, parse

XML = "application/xml"
SETTING = "cors"
METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100

Rule = dict[str, Any]


# What an origin or header name in a rule may hold: it is echoed in answer headers.
_TOKEN = re.compile(r"[\x21-\x7e]+")


def _texts(node: Any, name: str) -> list[str]:
    values = [(c.text or "").strip() for c in node if local(c.tag) == name]
    for value in values:
        if not _TOKEN.fullmatch(value):
            raise S3Error("MalformedXML", f"{name} must be printable ASCII without spaces.")
    return values


def parse_rules(body: bytes) -> list[Rule]:
    """The rules of a CORSConfiguration document, checked as S3 checks them."""
    root = parse(body, expected_root="CORSConfiguration")
    rules = []
    for node in children(root, "CORSRule"):
        methods = _texts(node, "AllowedMethod")
        origins = _texts(node, "AllowedOrigin")
        if not methods or not origins:
            raise S3Error("MalformedXML", "Each CORSRule needs an AllowedMethod and an "
                                          "AllowedOrigin.")
        for method in methods:
            if method not in METHODS:
                raise S3Error("InvalidRequest", "Found unsupported HTTP method in CORS "
                                                f"config. Unsupported method is {method}")
        for origin in origins:
            if origin.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedOrigin "{origin}" can not have '
                                                "more than one wildcard.")
        headers = _texts(node, "AllowedHeader")
        for header in headers:
            if header.count("*") > 1:
                raise S3Error("InvalidRequest", f'AllowedHeader "{header}" can not have '
                                                "more than one wildcard.")
        max_age = child_text(node, "MaxAgeSeconds")
        if max_age is not None and not re.fullmatch(r"[0-9]{1,9}", max_age.strip()):
            raise S3Error("MalformedXML", "MaxAgeSeconds must be a whole number.")
        rules.append({"id": child_text(node, "ID"), "methods": methods, "origins": origins,
                      "headers": headers, "expose": _texts(node, "ExposeHeader"),
                      "max_age": int(max_age) if max_age is not None else None})
    if not rules or len(rules) > MAX_RULES:
        raise S3Error("MalformedXML", f"A CORS configuration holds 1 to {MAX_RULES} rules.")
    return rules


def render_rules(rules: list[Rule]) -> bytes:
    out = []
    for rule in rules:
        fields: list[tuple[str, Any]] = [("ID", rule["id"])] if rule.get("id") else []
        fields += [("AllowedHeader", h) for h in rule["headers"]]
        fields += [("AllowedMethod", m) for m in rule["methods"]]
        fields += [("AllowedOrigin", o) for o in rule["origins"]]
        fields += [("ExposeHeader", h) for h in rule["expose"]]
        if rule.get("max_age") is not None:
            fields.append(("MaxAgeSeconds", rule["max_age"]))
        out.append(("CORSRule", fields))
    return document("CORSConfiguration", out)


def _matches(pattern: str, value: str) -> bool:
    """S3's patterns: exact, or one '*' standing for any run of characters."""
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) \
        and value.endswith(tail)


def matching_rule(rules: list[Rule], origin: str, method: str,
                  request_headers: list[str]) -> Rule | None:
    """The first rule allowing `origin`, `method` and every requested header."""
    for rule in rules:
        if method not in rule["methods"]:
            continue
        if not any(_matches(pattern, origin) for pattern in rule["origins"]):
            continue
        allowed = [h.lower() for h in rule["headers"]]
        if all(any(_matches(p, h) for p in allowed) for h in request_headers):
            return rule
    return None


def answer_headers(rule: Rule, origin: str, request_headers: list[str] | None = None
                   ) -> dict[str, str]:
    wildcard = "*" in rule["origins"]
    headers = {"Access-Control-Allow-Origin": "*" if wildcard else origin,
               "Access-Control-Allow-Methods": ", ".join(rule["methods"]),
               "Vary": "Origin, Access-Control-Request-Headers, "
                       "Access-Control-Request-Method"}
    if not wildcard:
        headers["Access-Control-Allow-Credentials"] = "true"
    if rule["expose"]:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["expose"])
    if rule.get("max_age") is not None:
        headers["Access-Control-Max-Age"] = str(rule["max_age"])
    if request_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(request_headers)
    return headers


def _requested_headers(headers: Mapping[str, str]) -> list[str]:
    raw = headers.get("access-control-request-headers", "")
    return [h.strip().lower() for h in raw.split(",") if h.strip()]


def rules_of(bucket: BucketRecord | None) -> list[Rule] | None:
    return bucket.setting(SETTING) if bucket is not None else None


def headers_for(bucket: BucketRecord | None, method: str, headers: Mapping[str, str]
                ) -> dict[str, str]:
    """CORS headers for an answer to a request with an Origin (none without a match).
    A request that names Access-Control-Request-Method is matched by it."""
    origin = headers.get("origin")
    rules = rules_of(bucket)
    if not origin or not rules:
        return {}
    wanted = headers.get("access-control-request-method", method)
    rule = matching_rule(rules, origin, wanted, [])
    return answer_headers(rule, origin) if rule else {}


def preflight(bucket: BucketRecord | None, headers: Mapping[str, str]) -> Response:
    """The answer to an OPTIONS preflight."""
    origin = headers.get("origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header "
                                    "needed.")
    method = headers.get("access-control-request-method")
    if not method:
        raise S3Error("BadRequest", "Invalid Access-Control-Request-Method: null")
    rules = rules_of(bucket)
    if not rules:
        raise S3Error("CORSResponse", "CORS is not enabled for this bucket.")
    requested = _requested_headers(headers)
    rule = matching_rule(rules, origin, method, requested)
    if rule is None:
        raise S3Error("CORSResponse", "This CORS request is not allowed. This is usually "
                      "because the evalution of Origin, request method / "
                      "Access-Control-Request-Method or Access-Control-Request-Headers are "
                      "not whitelisted by the resource's CORS spec.")
    return Response(status_code=200, headers=answer_headers(rule, origin, requested))


async def put_bucket_cors(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    rules = parse_rules(await ctx.read_small_body(64 * 1024))
    await ctx.objects.buckets.set_setting(bucket, SETTING, rules)
    # Every gateway's cached copy of the old rules has expired once this answers.
    await asyncio.sleep(ctx.config.gateway.bucket_cache_seconds)
    return Response(status_code=200)


async def get_bucket_cors(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket(fresh=True)
    rules = rules_of(bucket)
    if not rules:
        raise S3Error("NoSuchCORSConfiguration", extra={"BucketName": bucket.name})
    return Response(render_rules(rules), media_type=XML)


async def delete_bucket_cors(ctx: RequestContext) -> Response:
    bucket = await ctx.bucket()
    await ctx.objects.buckets.set_setting(bucket, SETTING, None)
    await asyncio.sleep(ctx.config.gateway.bucket_cache_seconds)
    return Response(status_code=204)
