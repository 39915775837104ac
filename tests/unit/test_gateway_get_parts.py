"""gateway.get: which bytes ?partNumber names, and the checks before any are read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.errors import S3Error
from gateway.get import part_span, requested_part, uploaded_in_parts
from gateway.router import route
from tests.unit.manifest_samples import PLAIN
from tests.unit.manifest_samples import multipart as _multipart
from tests.unit.manifest_samples import part as _part

MIB = 1 << 20




def _ctx(query: str, headers: dict[str, str] | None = None) -> SimpleNamespace:
    return SimpleNamespace(endpoint=route("GET", "/bkt/key", query), headers=headers or {})


def test_multipart_is_told_by_the_etag() -> None:
    assert uploaded_in_parts(_multipart(5, 1))
    assert not uploaded_in_parts(PLAIN)


def test_parts_span_the_object_in_order() -> None:
    manifest = _multipart(5 * MIB, 5 * MIB + 7, 3)
    assert part_span(manifest, 1)[:2] == (0, 5 * MIB)
    assert part_span(manifest, 2)[:2] == (5 * MIB, 5 * MIB + 7)
    start, size, part = part_span(manifest, 3)
    assert (start, size) == (10 * MIB + 7, 3) and part is manifest.parts[2]


def test_sparse_part_numbers_count_by_position() -> None:
    """Parts 1 and 3 of an upload are parts 1 and 2 of the object (x-amz-mp-parts-count
    is 2, and 1..2 reads every byte)."""
    manifest = _multipart(5, 4).with_changes(parts=(_part(1, 5), _part(3, 4)))
    assert part_span(manifest, 2)[:2] == (5, 4)
    with pytest.raises(S3Error) as err:
        part_span(manifest, 3)
    assert err.value.code == "InvalidPartNumber" and err.value.status == 416


def test_plain_object_is_its_own_part_one() -> None:
    assert part_span(PLAIN, 1) == (0, 10, None)
    with pytest.raises(S3Error) as err:
        part_span(PLAIN, 2)
    assert err.value.code == "InvalidPartNumber"
    assert err.value.extra == {"PartNumberRequested": "2", "ActualPartCount": "1"}


@pytest.mark.parametrize("query", ["partNumber=0", "partNumber=10001", "partNumber=x",
                                   "partNumber=", "partNumber=-1"])
def test_part_number_out_of_bounds(query: str) -> None:
    with pytest.raises(S3Error) as err:
        requested_part(_ctx(query))
    assert err.value.code == "InvalidArgument"


def test_part_number_with_range_is_refused() -> None:
    assert requested_part(_ctx("partNumber=2")) == 2
    assert requested_part(_ctx("")) is None
    with pytest.raises(S3Error) as err:
        requested_part(_ctx("partNumber=1", {"range": "bytes=0-1"}))
    assert err.value.code == "InvalidRequest"
