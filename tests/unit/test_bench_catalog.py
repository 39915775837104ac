"""The zero-work servers' catalog: what one worker stores, another finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog import MemoryCatalog, SharedCatalog, StoredObject


@pytest.mark.parametrize("shared", [False, True])
def test_objects_parts_and_listing_seen_by_every_worker(tmp_path: Path, shared: bool) -> None:
    if shared:
        one, two = SharedCatalog(str(tmp_path / "c.sqlite")), SharedCatalog(
            str(tmp_path / "c.sqlite"))
    else:
        one = two = MemoryCatalog()
    one.put("b", StoredObject([("n1", 10)], "crc32"))
    assert two.get("b") == StoredObject([("n1", 10)], "crc32")
    assert two.sorted_keys() == ["b"] and two.size("b") == 10
    one.put("a", StoredObject([("n2", 5), ("n3", 7)], None))
    assert two.sorted_keys() == ["a", "b"] and two.size("a") == 12  # re-read after a commit
    one.add_part("u1", 2, "p2", 3)
    two.add_part("u1", 1, "p1", 4)
    assert one.take_parts("u1") == [("p1", 4), ("p2", 3)] and two.take_parts("u1") == []
    two.delete("b")
    assert one.get("b") is None and one.sorted_keys() == ["a"]
