"""gateway.conditions: RFC 9110 section 13 preconditions with S3's precedence rules."""

from __future__ import annotations

import pytest

from gateway.conditions import NOT_MODIFIED, evaluate
from gateway.errors import S3Error
from gateway.xml import http_date

ETAG = "9bb58f26192e4ba00f01e2e7b136bbd8"
MODIFIED = 1_700_000_000.75            # the object's Last-Modified (fractional on purpose)
AT = http_date(MODIFIED)               # same second as the object
BEFORE = http_date(MODIFIED - 3600)
AFTER = http_date(MODIFIED + 3600)


def check(**headers: str) -> int | None:
    return evaluate({k.replace("_", "-"): v for k, v in headers.items()}, ETAG, MODIFIED)


def failed(**headers: str) -> str:
    with pytest.raises(S3Error) as exc:
        check(**headers)
    assert exc.value.code == "PreconditionFailed" and exc.value.status == 412
    return exc.value.extra["Condition"]


def test_no_conditions_proceed() -> None:
    assert check() is None


@pytest.mark.parametrize("value", [
    f'"{ETAG}"', ETAG, "*", f'"other", "{ETAG}"', f' "x" ,"{ETAG}" ', f'W/"{ETAG}"',
])
def test_if_match_true(value: str) -> None:
    assert check(if_match=value) is None


@pytest.mark.parametrize("value", ['"other"', '"other", "more"', "", f'"{ETAG}x"'])
def test_if_match_false(value: str) -> None:
    assert failed(if_match=value) == "If-Match"


@pytest.mark.parametrize("value", [f'"{ETAG}"', "*", f'W/"{ETAG}"', f'"a", W/"{ETAG}"'])
def test_if_none_match_matching_is_not_modified(value: str) -> None:
    assert check(if_none_match=value) == NOT_MODIFIED


def test_if_none_match_other_etag_proceeds() -> None:
    assert check(if_none_match='"other", W/"x"') is None


def test_if_modified_since() -> None:
    assert check(if_modified_since=BEFORE) is None
    assert check(if_modified_since=AT) == NOT_MODIFIED     # whole seconds compare equal
    assert check(if_modified_since=AFTER) == NOT_MODIFIED


def test_if_unmodified_since() -> None:
    assert check(if_unmodified_since=AFTER) is None
    assert check(if_unmodified_since=AT) is None
    assert failed(if_unmodified_since=BEFORE) == "If-Unmodified-Since"


def test_s3_if_match_true_overrides_if_unmodified_since_false() -> None:
    assert check(if_match=f'"{ETAG}"', if_unmodified_since=BEFORE) is None


def test_s3_if_none_match_false_with_if_modified_since_true_is_304() -> None:
    assert check(if_none_match=f'"{ETAG}"', if_modified_since=BEFORE) == NOT_MODIFIED


def test_if_none_match_true_ignores_if_modified_since() -> None:
    # RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present
    assert check(if_none_match='"other"', if_modified_since=AFTER) is None


def test_failed_if_match_wins_over_not_modified() -> None:
    assert failed(if_match='"other"', if_none_match=f'"{ETAG}"') == "If-Match"
    assert failed(if_unmodified_since=BEFORE, if_modified_since=AFTER) == "If-Unmodified-Since"


@pytest.mark.parametrize("bad", ["yesterday", "", "Mon, 99 Foo 2024 25:61:61 GMT", "1700000000"])
def test_unparseable_dates_are_ignored(bad: str) -> None:
    assert check(if_modified_since=bad) is None
    assert check(if_unmodified_since=bad) is None


def test_other_date_forms() -> None:
    # RFC 850 and numeric-offset forms still parse
    assert check(if_modified_since="Tuesday, 14-Nov-23 22:13:20 GMT") == NOT_MODIFIED
    assert check(if_unmodified_since="Tue, 14 Nov 2023 23:13:20 +0100") is None
    assert failed(if_unmodified_since="Tue, 14 Nov 2023 23:13:19 +0100") == \
        "If-Unmodified-Since"


def test_multipart_etag() -> None:
    assert evaluate({"if-match": '"abc-3"'}, "abc-3", MODIFIED) is None
    assert evaluate({"if-none-match": '"abc-3"'}, "abc-3", MODIFIED) == NOT_MODIFIED
