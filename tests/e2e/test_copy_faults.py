"""Server-side copies from a source with rotten fragments: exact bytes or no copy at all.

A copy reads its source like a GET (every fragment checked, a bad one replaced from
parity and queued for heal on its volume), so the copy holds the source's bytes. When a
segment of the source cannot be decoded, the copy fails and the destination keeps the
version it had: nothing of a half-read source is ever committed.
"""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from tests.e2e.corruption import codec_of, corrupt, heal_queued
from tests.e2e.helpers import current_manifest

pytestmark = pytest.mark.e2e
MIB = 1 << 20


def test_copy_decodes_around_corrupt_source_fragments(cluster, s3x, bucket):  # noqa: F811
    data = os.urandom(5 * MIB + 99)
    s3x.put_object(Bucket=bucket, Key="src", Body=data)
    manifest = current_manifest(cluster, bucket, "src")
    codec = codec_of(manifest)
    plan = {0: [0, 2], 1: [1], 3: [3, 5], 5: [4]}  # one bad fragment per segment at most
    flips = [corrupt(cluster, manifest, codec, index, segment)
             for index, segments in plan.items() for segment in segments]
    s3x.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert s3x.get_object(Bucket=bucket, Key="dst")["Body"].read() == data
    assert heal_queued(cluster, flips) == [], "corrupt source fragments not queued"


def test_copy_from_an_undecodable_source_changes_nothing(cluster, s3x, bucket):  # noqa: F811
    data = os.urandom(5 * MIB + 99)
    s3x.put_object(Bucket=bucket, Key="src", Body=data)
    s3x.put_object(Bucket=bucket, Key="dst", Body=b"old")
    manifest = current_manifest(cluster, bucket, "src")
    codec = codec_of(manifest)
    for index in (0, 2, 5):  # 3 of 6 fragments of segment 3: fewer than k = 4 good
        corrupt(cluster, manifest, codec, index, 3)
    with pytest.raises(ClientError) as err:
        s3x.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3x.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    listed = s3x.list_objects_v2(Bucket=bucket, Prefix="dst")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("dst", 3)]
