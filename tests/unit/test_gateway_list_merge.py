"""gateway.objects.list_merge: merging per-volume sorted pages into one S3 listing page.

The fake volumes here hold whatever each test gives them, not keys on a write quorum, so
every page asks every volume (`every_volume`); asking fewer is tested in
test_gateway_list_subset.py over data laid out as writes leave it.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.errors import S3Error
from gateway.objects import list_merge
from gateway.objects.list_merge import PAGE, ListedKey, ListPage, merge_list


@pytest.fixture(autouse=True)
def every_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(list_merge, "listing_volumes", lambda c: list(c.placed_ids))


def row(version: int, deleted: bool = False, durable: bool = True) -> dict[str, Any]:
    return {"version_id": f"{version:032x}", "deleted": deleted, "durable": durable,
            "size": version, "etag": f"etag{version}", "last_modified": float(version),
            "owner": "alice"}


def key(name: str, version: int, deleted: bool = False) -> dict[str, Any]:
    """A settled key as one volume lists it: its newest row, durable."""
    return {"key": name, "versions": [row(version, deleted)]}


def pending(name: str, *rows: dict[str, Any]) -> dict[str, Any]:
    """A key listed with rows newest first, down to the newest durable one."""
    return {"key": name, "versions": list(rows)}


def prefix(name: str) -> dict[str, str]:
    return {"prefix": name}


def entry_name(entry: dict[str, Any]) -> str:
    return entry["prefix"] if "prefix" in entry else entry["key"]


class FakeVolumes:
    """Serves each volume's entries (already rolled up, sorted) as volume pages would.

    A page holds the entries named after `start_after`, at most min(limit, page_size) of
    them, with `truncated` and `next` (the last name) as in docs/volume-api.md. A volume
    in `down` raises; one in `fail_after` raises once it has served that many pages.
    """

    def __init__(self, data: dict[str, list[dict[str, Any]]], page_size: int = PAGE) -> None:
        self.data = {vid: sorted(entries, key=entry_name) for vid, entries in data.items()}
        self.page_size = page_size
        self.down: set[str] = set()
        self.fail_after: dict[str, int] = {}
        self.calls: list[tuple[str, str, int]] = []

    async def list_objects(self, volume_id: str, incarnation: str, prefix: str,
                           start_after: str, delimiter: str, limit: int) -> dict[str, Any]:
        served = sum(1 for c in self.calls if c[0] == volume_id)
        self.calls.append((volume_id, start_after, limit))
        await asyncio.sleep(0)
        if volume_id in self.down or served >= self.fail_after.get(volume_id, served + 1):
            raise ConnectionError(f"{volume_id} unreachable")
        rest = [e for e in self.data[volume_id] if entry_name(e) > start_after]
        page = rest[:min(limit, self.page_size)]
        return {"entries": [dict(e) for e in page], "truncated": len(rest) > len(page),
                "next": entry_name(page[-1]) if page else ""}


def cluster(data: dict[str, list[dict[str, Any]]], k: int = 4, m: int = 2,
            page_size: int = PAGE) -> SimpleNamespace:
    ids = sorted(data)
    return SimpleNamespace(volumes=FakeVolumes(data, page_size), placed_ids=ids, width=k + m,
                           write_quorum=k if k > m else k + 1, suspect=lambda vid: False,
                           placement=lambda incarnation, name: tuple(ids[:k + m]))


def listing(c: SimpleNamespace, prefix: str = "", delimiter: str = "", start_after: str = "",
            max_keys: int = 1000) -> ListPage:
    return asyncio.run(merge_list(c, "inc", prefix, delimiter, start_after, max_keys))  # type: ignore[arg-type]


def names(page: ListPage) -> list[str]:
    return [k.key for k in page.keys]


def six(**volumes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = {f"v{i}": [] for i in range(1, 7)}
    data.update(volumes)
    return data


def test_empty_bucket() -> None:
    page = listing(cluster(six()))
    assert page == ListPage()


def test_newest_version_wins_across_volumes() -> None:
    c = cluster(six(v1=[key("a", 1)], v2=[key("a", 3)], v3=[key("a", 2)], v4=[key("b", 1)]))
    page = listing(c)
    assert page.keys == [ListedKey("a", f"{3:032x}", 3, "etag3", 3.0, "alice"),
                         ListedKey("b", f"{1:032x}", 1, "etag1", 1.0, "alice")]
    assert not page.truncated and page.last == "b"


def test_tombstones_are_dropped_only_when_newest() -> None:
    c = cluster(six(v1=[key("a", 5, deleted=True), key("b", 1, deleted=True)],
                    v2=[key("a", 4), key("b", 2)], v3=[key("c", 1, deleted=True)]))
    assert names(listing(c)) == ["b"]


def test_prefixes_are_deduped_and_interleaved_with_keys() -> None:
    c = cluster(six(v1=[key("a", 1), prefix("d/"), key("z", 1)],
                    v2=[prefix("d/"), key("e", 1)],
                    v3=[prefix("d/"), prefix("f/")]))
    page = listing(c, delimiter="/")
    assert names(page) == ["a", "e", "z"]
    assert page.prefixes == ["d/", "f/"]
    assert page.last == "z"


def test_max_keys_truncates_and_counts_prefixes() -> None:
    c = cluster(six(v1=[key("a", 1), key("c", 1)], v2=[prefix("b/"), key("d", 1)],
                    v3=[key("e", 1)]))
    page = listing(c, delimiter="/", max_keys=3)
    assert names(page) == ["a", "c"] and page.prefixes == ["b/"]
    assert page.truncated and page.last == "c"
    page = listing(c, delimiter="/", max_keys=2)
    assert page.truncated and page.last == "b/"
    page = listing(c, delimiter="/", max_keys=5)
    assert len(page.keys) + len(page.prefixes) == 5 and not page.truncated


def test_max_keys_zero() -> None:
    page = listing(cluster(six(v1=[key("a", 1)])), max_keys=0)
    assert page.keys == [] and page.truncated


def test_volume_page_limit() -> None:
    c = cluster(six(v1=[key("a", 1)]))
    for max_keys, limit in ((1, 10), (50, 51), (999, 1000), (1000, 1000)):
        c.volumes.calls.clear()
        listing(c, max_keys=max_keys)
        assert {call[2] for call in c.volumes.calls} == {limit}


def test_start_after_is_passed_through() -> None:
    c = cluster(six(v1=[key("a", 1), key("b", 1), key("c", 1)]))
    assert names(listing(c, start_after="a")) == ["b", "c"]
    assert {call[1] for call in c.volumes.calls} == {"a"}


def test_pagination_pulls_further_pages() -> None:
    v1 = [key(f"k{i:03d}", 1) for i in range(0, 60, 2)]
    v2 = [key(f"k{i:03d}", 2) for i in range(1, 60, 2)]
    v3 = [key(f"k{i:03d}", 3) for i in range(0, 60, 3)]
    c = cluster(six(v1=v1, v2=v2, v3=v3), page_size=4)
    page = listing(c)
    assert names(page) == [f"k{i:03d}" for i in range(60)]
    assert page.keys[3].version_id == f"{3:032x}"  # k003 is newest on v3
    assert not page.truncated
    v1_calls = [call[1] for call in c.volumes.calls if call[0] == "v1"]
    assert v1_calls[:3] == ["", "k006", "k014"]
    assert len(v1_calls) == 8


def test_pagination_resumes_after_a_common_prefix() -> None:
    c = cluster(six(v1=[key("a", 1), prefix("b/"), key("c", 1)]), page_size=2)
    page = listing(c, delimiter="/")
    assert names(page) == ["a", "c"] and page.prefixes == ["b/"]
    # the volume itself resumes after a whole rolled-up prefix
    assert [call[1] for call in c.volumes.calls if call[0] == "v1"] == ["", "b/"]


def test_truncation_then_next_page_from_last() -> None:
    data = six(v1=[key(f"k{i}", 1) for i in range(10)], v2=[key(f"k{i}", 2) for i in range(5)])
    c = cluster(data, page_size=3)
    first = listing(c, max_keys=4)
    assert names(first) == ["k0", "k1", "k2", "k3"] and first.truncated
    second = listing(c, start_after=first.last, max_keys=100)
    assert names(second) == [f"k{i}" for i in range(4, 10)] and not second.truncated


@pytest.mark.parametrize("failed", [1, 2])
def test_up_to_width_minus_quorum_volumes_may_fail(failed: int) -> None:
    c = cluster(six(**{f"v{i}": [key("a", i)] for i in range(1, 7)}))
    c.volumes.down = {f"v{i}" for i in range(6, 6 - failed, -1)}
    page = listing(c)
    assert page.keys[0].version_id == f"{6 - failed:032x}"


def test_more_failures_are_503() -> None:
    c = cluster(six(**{f"v{i}": [key("a", i)] for i in range(1, 7)}))
    c.volumes.down = {"v4", "v5", "v6"}
    with pytest.raises(S3Error) as exc:
        listing(c)
    assert exc.value.code == "ServiceUnavailable" and exc.value.status == 503


def test_tolerance_follows_the_erasure_width_not_the_volume_count() -> None:
    # 8 volumes with 2+2 (write quorum 3): only one volume may be missing
    data = {f"v{i}": [key("a", i)] for i in range(1, 9)}
    c = cluster(data, k=2, m=2)
    c.volumes.down = {"v8"}
    assert names(listing(c)) == ["a"]
    c.volumes.down = {"v7", "v8"}
    with pytest.raises(S3Error, match="ServiceUnavailable"):
        listing(c)


def test_failures_on_later_pages_are_503() -> None:
    data = six(**{f"v{i}": [key(f"k{j:02d}", i) for j in range(20)] for i in range(1, 4)})
    data["v4"] = [key("zz", 1)]
    data["v5"] = [key("zz", 1)]
    data["v6"] = [key("zz", 1)]
    c = cluster(data, page_size=5)
    # v1..v3 answer their first page, then become unreachable: 3 > width - quorum = 2
    c.volumes.fail_after = {"v1": 1, "v2": 1, "v3": 1}
    with pytest.raises(S3Error, match="ServiceUnavailable"):
        listing(c)


def test_trailing_tombstone_does_not_truncate() -> None:
    c = cluster(six(v1=[key("a", 1), key("b", 1), key("c", 2, deleted=True)],
                    v2=[key("c", 1)]))
    page = listing(c, max_keys=2)
    assert names(page) == ["a", "b"]
    assert not page.truncated


def test_key_equal_to_prefix_at_a_page_boundary() -> None:
    c = cluster(six(v1=[key("photos/", 1), key("photos/a.jpg", 1), key("photos/b.jpg", 1)]),
                page_size=1)
    page = listing(c, prefix="photos/", delimiter="/")
    assert names(page) == ["photos/", "photos/a.jpg", "photos/b.jpg"]


def test_a_pending_tombstone_on_one_volume_hides_nothing() -> None:
    """A delete that reached one volume only (never acknowledged) must not hide the key
    GET still returns; one on the write quorum hides it even before its notice."""
    live = key("k", 1)
    failed = pending("k", row(2, deleted=True, durable=False), row(1))
    page = listing(cluster(six(v1=[failed], v2=[live], v3=[live], v4=[live], v5=[live],
                               v6=[live])))
    assert names(page) == ["k"] and page.keys[0].version_id == f"{1:032x}"
    page = listing(cluster(six(v1=[failed], v2=[failed], v3=[failed], v4=[failed],
                               v5=[live], v6=[live])))
    assert names(page) == []


def test_a_pending_version_on_the_quorum_is_listed() -> None:
    """Acknowledged but its durable notice not yet applied: listed as GET serves it."""
    newer = pending("k", row(2, durable=False), row(1))
    old = key("k", 1)
    page = listing(cluster(six(v1=[newer], v2=[newer], v3=[newer], v4=[newer], v5=[old],
                               v6=[old])))
    assert page.keys[0].version_id == f"{2:032x}"


def test_a_prefix_backed_only_by_pending_rows_is_checked() -> None:
    """A prefix no volume holds a settled live key under is listed only if a listing of
    it finds a current key: a write that never reached its quorum invents nothing."""
    failed = pending("d/y", row(2, durable=False))
    maybe = {"prefix": "d/", "settled": False}
    c = cluster(six(v1=[maybe, failed], v2=[maybe, failed]))

    class Split(FakeVolumes):
        """With a delimiter the volumes roll d/y up; without one they list it."""

        async def list_objects(self, volume_id, incarnation, prefix, start_after,
                               delimiter, limit):  # noqa: ANN001
            page = await super().list_objects(volume_id, incarnation, prefix, start_after,
                                              delimiter, limit)
            page["entries"] = [e for e in page["entries"]
                               if ("prefix" in e) == bool(delimiter)]
            return page

    c.volumes.__class__ = Split
    assert listing(c, delimiter="/").prefixes == []
    acked = pending("d/y", row(2, durable=False))
    data = six(v1=[maybe, acked], v2=[maybe, acked], v3=[maybe, acked], v4=[maybe, acked])
    c = cluster(data)
    c.volumes.__class__ = Split
    assert listing(c, delimiter="/").prefixes == ["d/"]
