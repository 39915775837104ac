"""What a CompleteMultipartUpload checks before it commits: the whole-object checksum its
headers declare (gateway.checksums) and its write conditions, checked once the upload is
known open and again, with the claims held, right before the commit (uploads.complete)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import zlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from gateway.checksums import (
    ObjectChecksum,
    checksum_of,
    complete_checksum,
    composite,
    full_object,
    verify_object_checksum,
)
from gateway.errors import S3Error
from gateway.objects import conditional, uploads
from gateway.objects.bucket_records import BucketRecord
from gateway.objects.conditional import WriteConditions
from gateway.objects.multipart_end import Claims
from gateway.objects.uploads import CompleteChecks, RequestedPart, Upload
from shardgate.manifest import ObjectManifest, PartManifest

PARTS = [b"a" * 1000, b"bc" * 700]


def _crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _code(call) -> str:  # noqa: ANN001 - any callable that raises an S3Error
    with pytest.raises(S3Error) as err:
        call()
    return err.value.code


def test_complete_checksum_parses_full_object_and_composite_values() -> None:
    whole = checksum_of(b"".join(PARTS), "CRC32")
    assert complete_checksum({"x-amz-checksum-crc32": whole}) == \
        ObjectChecksum("CRC32", base64.b64decode(whole))
    sha = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    parsed = complete_checksum({"x-amz-checksum-sha256": f"{sha}-12",
                                "x-amz-checksum-type": "composite"})
    assert parsed == ObjectChecksum("SHA256", hashlib.sha256(b"x").digest(), 12, "COMPOSITE")
    assert complete_checksum({"x-amz-checksum-type": "FULL_OBJECT"}) == \
        ObjectChecksum(None, checksum_type="FULL_OBJECT")
    assert complete_checksum({"content-type": "application/xml"}) is None


@pytest.mark.parametrize(("headers", "code"), [
    ({"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
     "InvalidRequest"),
    ({"x-amz-checksum-type": "WHOLE"}, "InvalidRequest"),
    # A value that is no checksum cannot match the object's (s3-tests expects BadDigest).
    ({"x-amz-checksum-crc32": "AAAA"}, "BadDigest"),
    ({"x-amz-checksum-crc32": "AAAAAA==-0"}, "BadDigest"),
    ({"x-amz-checksum-crc32": "AAAAAA==-x"}, "BadDigest"),
    ({"x-amz-checksum-sha256": "bad"}, "BadDigest"),
])
def test_complete_checksum_refuses_malformed_headers(headers: dict[str, str],
                                                     code: str) -> None:
    assert _code(lambda: complete_checksum(headers)) == code


def test_full_object_value_is_checked_against_the_combined_crc() -> None:
    value = full_object([(_crc(p), len(p)) for p in PARTS], "CRC32")
    assert value == checksum_of(b"".join(PARTS), "CRC32")
    object_sums = {"CRC32": value}
    verify_object_checksum(complete_checksum({"x-amz-checksum-crc32": value}), object_sums,
                           "FULL_OBJECT")
    wrong = checksum_of(b"other", "CRC32")
    for headers in ({"x-amz-checksum-crc32": wrong},
                    {"x-amz-checksum-crc32": f"{value}-2"},
                    {"x-amz-checksum-crc32": value, "x-amz-checksum-type": "COMPOSITE"}):
        assert _code(lambda h=headers: verify_object_checksum(
            complete_checksum(h), object_sums, "FULL_OBJECT")) == "BadDigest"


def test_composite_value_is_checked_with_its_part_count() -> None:
    digests = [hashlib.sha256(p).digest() for p in PARTS]
    value = composite(digests, "SHA256")
    assert value.endswith("-2")
    object_sums = {"SHA256": value}
    for sent in (value, value.removesuffix("-2")):
        verify_object_checksum(complete_checksum({"x-amz-checksum-sha256": sent}),
                               object_sums, "COMPOSITE")
    assert _code(lambda: verify_object_checksum(
        complete_checksum({"x-amz-checksum-sha256": value.replace("-2", "-3")}),
        object_sums, "COMPOSITE")) == "BadDigest"


def test_an_algorithm_the_object_lacks_is_an_invalid_request() -> None:
    sent = complete_checksum({"x-amz-checksum-crc32c": "AAAAAA=="})
    assert _code(lambda: verify_object_checksum(sent, {"CRC32": "AAAAAA=="},
                                                "FULL_OBJECT")) == "InvalidRequest"
    assert _code(lambda: verify_object_checksum(sent, {}, "")) == "InvalidRequest"
    verify_object_checksum(complete_checksum({"x-amz-checksum-type": "COMPOSITE"}), {}, "")


class _Steps:
    """Stands in for the volume-facing steps of uploads.complete, recording their order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[str] = []
        part = PartManifest(1, 10, hashlib.md5(b"p").hexdigest(), "tag", ("v1", "v2", "v3"),
                            checksums={"CRC32": base64.b64encode(_crc(b"p")).decode()})
        meta = {"content_type": "text/plain", "headers": {}, "metadata": {},
                "checksum_algorithm": "CRC32", "checksum_type": "FULL_OBJECT"}
        upload = Upload({"upload_id": "u1", "owner": "alice", "key": "k", "manifest": meta},
                        ("v1", "v2", "v3"), 1)

        async def step(name: str, result: object = None) -> object:
            self.log.append(name)
            return result

        self.current: ObjectManifest | None = None

        @contextlib.asynccontextmanager
        async def key_claim(*args: object) -> AsyncIterator[None]:
            self.log.append("key claim")
            try:
                yield
            finally:
                self.log.append("key release")

        async def evidence(*args: object) -> tuple[ObjectManifest | None, list[str]]:
            self.log.append("evaluate")
            return self.current, []

        patches = {
            "find": lambda *a: step("find", upload),
            "_chosen_parts": lambda *a: step("parts", [part]),
            "find_latest": lambda *a: step("read key"),
            "claim_quorum": lambda *a: step("claim", Claims(held=["v1", "v2"])),
            "_holders_now": lambda c, u, parts: step("holders", parts),
            "complete_on": lambda c, vids, *a: step("commit", list(vids)),
            "claim_stragglers": lambda *a: step("stragglers", []),
            "commit_where_missing": lambda *a: step("missing", []),
            "notify_durable": lambda *a: self.log.append("durable"),
            "key_claim": key_claim,
        }
        for name, fake in patches.items():
            monkeypatch.setattr(uploads, name, fake)
        # The fence is conditional.fence_for's, which reads the key there.
        monkeypatch.setattr(conditional, "current_evidence", evidence)

    def complete(self, checks: CompleteChecks) -> object:
        cluster = SimpleNamespace(ack_quorum=2, config=SimpleNamespace(
            erasure=SimpleNamespace(k=2, m=1, ec_type="isa_l_rs_vand", segment_size=1 << 20)))
        bucket = BucketRecord("b", "alice", "inc", 0.0, False, 1)
        return asyncio.run(uploads.complete(cluster, bucket, "k", "u1", "alice",
                                            [RequestedPart(1, "e", {})], checks))


def test_conditions_are_evaluated_under_the_key_claim_before_the_version_is_made(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _Steps(monkeypatch)
    steps.complete(CompleteChecks(conditions=WriteConditions(if_none_match=("*",))))
    assert steps.log[:2] == ["find", "parts"]
    held = steps.log[steps.log.index("key claim"):]
    # the parts' holders are read again once the upload's claims are held (a rebalance
    # may have moved a fragment since the parts were chosen)
    assert held[:5] == ["key claim", "evaluate", "claim", "holders", "commit"]
    assert "key release" in held


def test_a_condition_failing_under_the_claim_commits_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _Steps(monkeypatch)
    steps.current = ObjectManifest("b", "inc", "k", "0" * 32, 0.0, "alice", etag="e")
    with pytest.raises(S3Error) as err:
        steps.complete(CompleteChecks(conditions=WriteConditions(if_none_match=("*",))))
    assert err.value.code == "PreconditionFailed"
    assert "claim" not in steps.log and "commit" not in steps.log
    assert steps.log[-1] == "key release"


def test_a_wrong_checksum_fails_before_any_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _Steps(monkeypatch)
    wrong = complete_checksum({"x-amz-checksum-crc32": checksum_of(b"q", "CRC32")})
    with pytest.raises(S3Error) as err:
        steps.complete(CompleteChecks(checksum=wrong))
    assert err.value.code == "BadDigest" and "claim" not in steps.log
    right = complete_checksum({"x-amz-checksum-crc32": checksum_of(b"p", "CRC32")})
    steps.log.clear()
    assert steps.complete(CompleteChecks(checksum=right)).checksums == {
        "CRC32": checksum_of(b"p", "CRC32")}
    assert "commit" in steps.log
