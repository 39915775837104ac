"""gateway.objects.list_merge asking fewer volumes: all but write quorum - 1 of them.

The data is laid out as writes leave it: each key on at least the write quorum (4 of 6).
What must hold: a page asks 3 volumes, yet lists every key at its newest version; a
volume of those that fails, or a pending row the 3 cannot decide, sends the page to all
six, which then answer as before.
"""

from __future__ import annotations

from tests.unit.test_gateway_list_merge import cluster, key, listing, names, pending, row, six

VOLUMES = [f"v{i}" for i in range(1, 7)]


def on(volumes: str, *entries: dict) -> dict[str, list[dict]]:
    """`entries` on the volumes named by digits ("1234": v1..v4)."""
    return {f"v{d}": list(entries) for d in volumes}


def merged(*layouts: dict[str, list[dict]]) -> dict[str, list[dict]]:
    data = six()
    for layout in layouts:
        for vid, entries in layout.items():
            data[vid] = data[vid] + entries
    return data


def asked(c) -> set[str]:
    return {call[0] for call in c.volumes.calls}


def test_three_volumes_list_every_key_at_its_newest() -> None:
    # Each key on a different quorum of four; "b" overwritten on another four.
    data = merged(on("1234", key("a", 1)), on("3456", key("b", 1)), on("1256", key("c", 1)))
    for vid in "1346":
        data[f"v{vid}"] = [e if e["key"] != "b" else key("b", 2) for e in data[f"v{vid}"]]
    for _ in range(6):  # whichever three volumes the turn picks
        c = cluster(data)
        page = listing(c)
        assert names(page) == ["a", "b", "c"]
        assert page.keys[1].version_id == f"{2:032x}"
        assert len(asked(c)) == 3


def test_a_failed_volume_sends_the_page_to_all() -> None:
    data = merged(on("1234", key("a", 1)), on("3456", key("b", 1)))
    for down in VOLUMES:
        c = cluster(data)
        c.volumes.down = {down}
        assert names(listing(c)) == ["a", "b"]
        assert asked(c) == (set(VOLUMES) if down in asked(c) else asked(c) - {down})
        assert len(asked(c)) in (3, 6)


def test_an_undecidable_pending_row_sends_the_page_to_all() -> None:
    """A newer version acknowledged on four volumes, its notice not yet applied: three
    volumes may show it on one only (undecidable); six prove it."""
    newer = pending("k", row(2, durable=False), row(1))
    data = merged(on("1234", newer), on("56", key("k", 1)))
    for _ in range(6):
        c = cluster(data)
        page = listing(c)
        assert page.keys[0].version_id == f"{2:032x}"
        assert asked(c) == set(VOLUMES)
