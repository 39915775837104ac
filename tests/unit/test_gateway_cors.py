"""CORS rules: parsing and checks, origin/method/header matching, answer headers."""

from __future__ import annotations

import pytest

from gateway import cors
from gateway.errors import S3Error


def config(*rules: str) -> bytes:
    return ("<CORSConfiguration>" + "".join(f"<CORSRule>{r}</CORSRule>" for r in rules)
            + "</CORSConfiguration>").encode()


RULES = cors.parse_rules(config(
    "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*suffix</AllowedOrigin>",
    "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>start*end</AllowedOrigin>",
    "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>DELETE</AllowedMethod>"
    "<AllowedOrigin>https://app.example</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader>"
    "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>",
))


@pytest.mark.parametrize(("origin", "method", "headers", "index"), [
    ("foo.suffix", "GET", [], 0),
    ("startend", "GET", [], 1),
    ("start12end", "GET", [], 1),
    ("0start12end", "GET", [], None),
    ("foo.suffix", "PUT", [], None),
    ("https://app.example", "PUT", ["x-amz-meta-a", "x-amz-date"], 2),
    ("https://app.example", "PUT", ["content-type"], None),
    ("https://app.example", "GET", [], None),
])
def test_matching(origin, method, headers, index):
    rule = cors.matching_rule(RULES, origin, method, headers)
    assert rule is (None if index is None else RULES[index])


def test_round_trip_and_answer_headers():
    assert cors.parse_rules(cors.render_rules(RULES)) == RULES
    headers = cors.answer_headers(RULES[2], "https://app.example", ["x-amz-date"])
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "PUT, DELETE"
    assert headers["Access-Control-Allow-Headers"] == "x-amz-date"
    assert headers["Access-Control-Expose-Headers"] == "ETag"
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    anyone = cors.parse_rules(config("<AllowedMethod>GET</AllowedMethod>"
                                     "<AllowedOrigin>*</AllowedOrigin>"))[0]
    headers = cors.answer_headers(anyone, "https://x.example")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(("body", "code"), [
    (config("<AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"),
     "InvalidRequest"),
    (config("<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*a*</AllowedOrigin>"),
     "InvalidRequest"),
    (config("<AllowedOrigin>*</AllowedOrigin>"), "MalformedXML"),
    (config(), "MalformedXML"),
    (b"<NotCORS/>", "MalformedXML"),
])
def test_bad_configurations(body, code):
    with pytest.raises(S3Error) as err:
        cors.parse_rules(body)
    assert err.value.code == code


def test_preflight_needs_origin_and_method():
    for headers, code in (({}, "BadRequest"), ({"origin": "a"}, "BadRequest")):
        with pytest.raises(S3Error) as err:
            cors.preflight(None, {**headers})
        assert err.value.code == code and err.value.status == 400
    with pytest.raises(S3Error) as err:
        cors.preflight(None, {"origin": "a", "access-control-request-method": "GET"})
    assert err.value.code == "CORSResponse" and err.value.status == 403


@pytest.mark.parametrize("rule", [
    "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"
    "<MaxAgeSeconds>\u00b2</MaxAgeSeconds>",
    "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"
    "<ExposeHeader>caf\u00e9</ExposeHeader>",
    "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>a&#10;b</AllowedOrigin>",
])
def test_values_echoed_in_headers_must_be_header_safe(rule):
    with pytest.raises(S3Error) as err:
        cors.parse_rules(config(rule))
    assert err.value.code == "MalformedXML"
