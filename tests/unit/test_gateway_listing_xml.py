"""gateway.listing's rows rendered as text: byte for byte what ElementTree writes for the
same elements, for any key, owner and timestamp."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.listing import _contents, url_encoder
from gateway.objects.list_merge import ListedKey, ListPage
from gateway.xml import S3_NS, document, iso8601, rows_document


def _as_elementtree(page: ListPage, enc, owner_name) -> list[tuple[str, object]]:  # noqa: ANN001
    """The rows as (tag, value) pairs for `document`: how they were built before."""
    out: list[tuple[str, object]] = []
    for item in page.keys:
        fields: list[tuple[str, object]] = [
            ("Key", enc(item.key)), ("LastModified", iso8601(item.last_modified)),
            ("ETag", f'"{item.etag}"'), ("Size", item.size)]
        if owner_name is not None:
            fields.append(("Owner", [("ID", item.owner),
                                     ("DisplayName", owner_name(item.owner))]))
        fields.append(("StorageClass", "STANDARD"))
        out.append(("Contents", fields))
    out.extend(("CommonPrefixes", [("Prefix", enc(p))]) for p in page.prefixes)
    return out


keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=40)
listed = st.builds(ListedKey, key=keys, version_id=st.just("v"),
                   size=st.integers(0, 5 * 2**40), etag=st.text(max_size=40),
                   last_modified=st.floats(0, 4e9), owner=keys)


@settings(max_examples=300, deadline=None)
@given(st.lists(listed, max_size=6), st.lists(keys, max_size=3), st.booleans(),
       st.sampled_from([None, "url"]))
def test_rows_match_elementtree(items, prefixes, with_owner, encoding) -> None:  # noqa: ANN001
    page = ListPage(keys=items, prefixes=prefixes)
    enc = url_encoder(encoding)
    owner_name = (lambda owner: f"name <{owner}>") if with_owner else None
    head = [("Name", "bucket"), ("Prefix", "p&<>"), ("MaxKeys", 1000),
            ("IsTruncated", False)]
    assert rows_document("ListBucketResult", head, _contents(page, enc, owner_name)) == (
        document("ListBucketResult", head + _as_elementtree(page, enc, owner_name)))


def test_rows_document_with_no_other_children() -> None:
    assert rows_document("R", [], ["<A>1</A>"]) == document("R", [("A", 1)])
    empty = ET.fromstring(rows_document("R", [], []))
    assert empty.tag == f"{{{S3_NS}}}R" and len(empty) == 0 and not empty.text


@settings(max_examples=2000, deadline=None)
@given(st.floats(0, 4e9) | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995))
def test_iso8601_matches_datetime(epoch: float) -> None:
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    assert iso8601(epoch) == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
