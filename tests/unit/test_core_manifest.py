"""shardgate.manifest: dict round trip, archive ids, archives held by one volume, holders
named by any copy."""

from __future__ import annotations

import dataclasses
import json

from shardgate.manifest import (
    ErasureParams,
    ObjectManifest,
    PartManifest,
    archive_id,
    named_holders,
)


def manifest(**changes: object) -> ObjectManifest:
    parts = (
        PartManifest(1, 5_000_000, "e1", "tag1", ("v1", "v2", None, "v4", "v5", "v6"),
                     checksums={"CRC32": "AAAAAA=="}),
        PartManifest(2, 10, "e2", "tag2", ("v3", "v1", "v2", "v4", None, "v1"), inline=True),
    )
    base = ObjectManifest(
        bucket="b", incarnation="inc", key="dir/key é", version_id="0" * 32,
        last_modified=1700000000.25, owner="alice", size=5_000_010, etag="abc-2",
        content_type="text/plain", headers={"cache-control": "no-cache"},
        metadata={"color": "red"}, checksums={"CRC32": "BBBBBB=="}, checksum_type="COMPOSITE",
        erasure=ErasureParams(4, 2, "isa_l_rs_vand", 1 << 20), parts=parts)
    return base.with_changes(**changes) if changes else base


def test_round_trip_through_json() -> None:
    original = manifest()
    raw = json.loads(json.dumps(original.to_dict()))
    assert raw["parts"][0]["placement"][2] is None
    restored = ObjectManifest.from_dict(raw)
    assert restored == original
    assert isinstance(restored.erasure, ErasureParams)
    assert isinstance(restored.parts[0], PartManifest)
    assert restored.parts[0].placement == ("v1", "v2", None, "v4", "v5", "v6")
    assert restored.parts[1].inline is True


def test_round_trip_of_tombstone_without_parts_or_erasure() -> None:
    tomb = ObjectManifest(bucket="b", incarnation="inc", key="k", version_id="1" * 32,
                          last_modified=1.0, owner="bob", deleted=True)
    raw = json.loads(json.dumps(tomb.to_dict()))
    assert raw["erasure"] is None and raw["parts"] == []
    assert ObjectManifest.from_dict(raw) == tomb


def test_from_dict_does_not_mutate_its_input() -> None:
    raw = manifest().to_dict()
    snapshot = json.dumps(raw, sort_keys=True)
    ObjectManifest.from_dict(raw)
    assert json.dumps(raw, sort_keys=True) == snapshot


def test_archive_id_is_deterministic_and_distinct() -> None:
    a = archive_id("inc", "key", "tag", 0)
    assert a == archive_id("inc", "key", "tag", 0)
    assert len(a) == 40 and int(a, 16) >= 0
    others = {archive_id("inc", "key", "tag", 1), archive_id("inc", "key", "tag2", 0),
              archive_id("inc2", "key", "tag", 0), archive_id("inc", "key2", "tag", 0)}
    assert a not in others and len(others) == 4


def test_archive_id_fields_do_not_run_together() -> None:
    assert archive_id("a", "bc", "t", 0) != archive_id("ab", "c", "t", 0)
    assert archive_id("i", "k", "t1", 1) != archive_id("i", "k", "t", 11)


def test_part_archive_id_uses_its_tag() -> None:
    part = manifest().parts[1]
    assert part.archive_id("inc", "k", 3) == archive_id("inc", "k", "tag2", 3)


def test_archives_on_lists_every_fragment_a_volume_holds() -> None:
    m = manifest()
    inc, key = m.incarnation, m.key
    assert m.archives_on("v1") == [archive_id(inc, key, "tag1", 0), archive_id(inc, key, "tag2", 1),
                                   archive_id(inc, key, "tag2", 5)]
    assert m.archives_on("v6") == [archive_id(inc, key, "tag1", 5)]
    assert m.archives_on("v9") == []
    assert m.with_changes(parts=()).archives_on("v1") == []


def test_summary_and_with_changes() -> None:
    m = manifest()
    assert m.summary() == {"size": 5_000_010, "etag": "abc-2", "last_modified": 1700000000.25,
                           "owner": "alice"}
    deleted = m.with_changes(deleted=True)
    assert deleted.deleted and not m.deleted and deleted.key == m.key


def test_named_holders_takes_each_index_from_any_copy() -> None:
    mine = manifest().to_dict()
    other = manifest().to_dict()
    other["parts"][0]["placement"] = ["v1", None, "v3", "v4", "v5", "v6"]
    other["parts"][1]["placement"] = ["v3", "v1", "v2", "v4", "v9", "v1"]
    merged = named_holders([mine, other])
    assert merged["parts"][0]["placement"] == ["v1", "v2", "v3", "v4", "v5", "v6"]
    assert merged["parts"][1]["placement"] == ["v3", "v1", "v2", "v4", "v9", "v1"]
    assert mine["parts"][0]["placement"][2] is None  # the copies are left as they were
    assert ObjectManifest.from_dict(merged).parts[0].placement[2] == "v3"


def test_named_holders_of_equal_copies_is_the_first() -> None:
    mine = manifest().to_dict()
    assert named_holders([mine, manifest().to_dict()]) is mine
    tombstone = {"parts": []}
    assert named_holders([tombstone, tombstone]) is tombstone


def test_to_dict_is_asdict_with_nothing_shared_that_can_change() -> None:
    original = manifest(acl=[{"grantee": "alice", "permission": "FULL_CONTROL"}],
                        tags={"team": "a"})
    raw = original.to_dict()
    assert raw == dataclasses.asdict(original)
    assert isinstance(raw["parts"], tuple) and isinstance(raw["parts"][0]["placement"], tuple)
    raw["headers"]["cache-control"] = "changed"
    raw["acl"][0]["permission"] = "READ"
    raw["parts"][0]["checksums"]["CRC32"] = "changed"
    assert original == manifest(acl=[{"grantee": "alice", "permission": "FULL_CONTROL"}],
                                tags={"team": "a"})
