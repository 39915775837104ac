"""gateway.listing resume markers, driven through merge_list over fake volume pages."""

from __future__ import annotations

from tests.unit.test_gateway_list_merge import (  # noqa: F401 - every_volume: a fixture
    cluster,
    every_volume,
    key,
    listing,
    names,
    prefix,
    six,
)


def test_marker_naming_a_common_prefix_skips_its_keys() -> None:
    c = cluster(six(v1=[key("a", 1), prefix("b/"), key("c", 1)]))
    page = listing(c, delimiter="/", start_after="b/")
    assert names(page) == ["c"] and page.prefixes == []


def test_page_after_folder_object_keeps_its_contents() -> None:
    """A key equal to the prefix ('photos/') is a key, not a rolled-up prefix: the next
    page must resume right after it, not after everything below it."""
    c = cluster(six(v1=[key("photos/", 1), key("photos/a.jpg", 1), key("photos/b.jpg", 1)]))
    first = listing(c, prefix="photos/", delimiter="/", max_keys=1)
    assert names(first) == ["photos/"] and first.truncated
    second = listing(c, prefix="photos/", delimiter="/", start_after=first.last)
    assert names(second) == ["photos/a.jpg", "photos/b.jpg"]
