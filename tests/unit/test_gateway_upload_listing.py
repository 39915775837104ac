"""gateway.multipart.page_uploads: ListMultipartUploads pages over the merged upload rows."""

from __future__ import annotations

from gateway.multipart import UploadPage, page_uploads


def rows(*uploads: tuple[str, str]) -> list[dict]:
    """Upload rows as the object layer returns them, sorted by key then upload id."""
    return sorted(({"key": k, "upload_id": u} for k, u in uploads),
                  key=lambda r: (r["key"], r["upload_id"]))


ROWS = rows(("a", "01"), ("a", "02"), ("a", "03"), ("b/1", "04"), ("b/2", "05"),
            ("c", "06"), ("d/e/f", "07"))


def listed(page: UploadPage) -> list[tuple[str, str]]:
    return [(r["key"], r["upload_id"]) for r in page.uploads]


def walk(max_uploads: int, prefix: str = "", delimiter: str = "") -> list[object]:
    """Every page, following NextKeyMarker / NextUploadIdMarker as a client does."""
    seen: list[object] = []
    key_marker = upload_id_marker = ""
    while True:
        page = page_uploads(ROWS, prefix, delimiter, key_marker, upload_id_marker, max_uploads)
        seen += sorted([*listed(page), *page.prefixes],
                       key=lambda e: e if isinstance(e, str) else e[0])
        if not page.truncated:
            return seen
        assert page.next_key is not None
        key_marker, upload_id_marker = page.next_key, page.next_upload_id or ""


def test_everything_in_key_then_initiation_order() -> None:
    page = page_uploads(ROWS, "", "", "", "", 1000)
    assert listed(page) == [(r["key"], r["upload_id"]) for r in ROWS]
    assert not page.truncated and page.next_key == "d/e/f" and page.next_upload_id == "07"


def test_max_uploads_truncates_with_next_markers() -> None:
    page = page_uploads(ROWS, "", "", "", "", 2)
    assert listed(page) == [("a", "01"), ("a", "02")]
    assert page.truncated and (page.next_key, page.next_upload_id) == ("a", "02")


def test_upload_id_marker_resumes_within_a_key() -> None:
    page = page_uploads(ROWS, "", "", "a", "02", 2)
    assert listed(page) == [("a", "03"), ("b/1", "04")]


def test_key_marker_alone_skips_every_upload_of_that_key() -> None:
    assert listed(page_uploads(ROWS, "", "", "a", "", 1000))[0] == ("b/1", "04")
    assert listed(page_uploads(ROWS, "", "", "", "02", 1000)) == listed(
        page_uploads(ROWS, "", "", "", "", 1000))  # ignored without key-marker


def test_a_marker_upload_that_ended_still_resumes_after_it() -> None:
    assert listed(page_uploads(ROWS, "", "", "a", "025", 1000))[0] == ("a", "03")


def test_every_page_size_walks_everything_once() -> None:
    everything = [(r["key"], r["upload_id"]) for r in ROWS]
    for size in range(1, 9):
        assert walk(size) == everything


def test_delimiter_rolls_up_common_prefixes_counted_once() -> None:
    page = page_uploads(ROWS, "", "/", "", "", 1000)
    assert listed(page) == [("a", "01"), ("a", "02"), ("a", "03"), ("c", "06")]
    assert page.prefixes == ["b/", "d/"]
    for size in range(1, 8):
        assert walk(size, delimiter="/") == [("a", "01"), ("a", "02"), ("a", "03"), "b/",
                                             ("c", "06"), "d/"]


def test_page_ending_on_a_common_prefix() -> None:
    page = page_uploads(ROWS, "", "/", "", "", 4)
    assert page.prefixes == ["b/"] and page.truncated
    assert (page.next_key, page.next_upload_id) == ("b/", None)
    rest = page_uploads(ROWS, "", "/", "b/", "", 4)
    assert listed(rest) == [("c", "06")] and rest.prefixes == ["d/"]


def test_prefix_and_delimiter() -> None:
    page = page_uploads(ROWS, "d/", "/", "", "", 1000)
    assert listed(page) == [] and page.prefixes == ["d/e/"]
    page = page_uploads(ROWS, "b/", "/", "", "", 1000)
    assert listed(page) == [("b/1", "04"), ("b/2", "05")] and page.prefixes == []


def test_max_uploads_zero_is_an_empty_untruncated_page() -> None:
    page = page_uploads(ROWS, "", "", "", "", 0)
    assert page == UploadPage()
