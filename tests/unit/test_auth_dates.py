"""gateway.auth.checks.parse_amz_date: X-Amz-Date's exact ISO 8601 basic form only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.checks import AMZ_DATE_FORMAT, parse_amz_date


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
def test_every_timestamp_reads_back_to_the_second(when: datetime) -> None:
    stamp = when.strftime(AMZ_DATE_FORMAT)
    assert parse_amz_date(stamp) == when.replace(microsecond=0)
    assert parse_amz_date(stamp).strftime(AMZ_DATE_FORMAT) == stamp


@pytest.mark.parametrize("stamp", [
    "", "20261203T235959", "20261203 235959Z", "2026123T235959Z", "20261203T23595Z",
    "20261203T235959Zx", " 20261203T235959Z", "20261303T000000Z", "20260230T000000Z",
    "20261203T240000Z", "20261203T235960Z", "2026-12-03T23:59:59Z",
    "２0261203T235959Z", "Mon, 01 Jan 2001 00:00:00 GMT"])
def test_anything_else_is_refused(stamp: str) -> None:
    with pytest.raises(ValueError):
        parse_amz_date(stamp)
