"""Fragments written around the volumes' page cache, against real processes: with the
default policy ("auto") a PUT's parity archives are not in the page cache once it is
acknowledged while its data archives are, a multipart part's archives are none of them
cached, and each object reads back byte-exact (the reads fill the cache then). Where the
filesystem refuses O_DIRECT the volumes write through the cache and this is skipped."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.helpers import archive_path, current_manifest
from tests.nowait import direct_writes_work, first_page_cached, nowait_reads_work
from volume_server.direct_writes import BLOCK

pytestmark = pytest.mark.e2e


def _cached_archives(cluster, bucket: str, key: str) -> list[bool]:  # noqa: ANN001
    manifest = current_manifest(cluster, bucket, key)
    part = manifest.parts[0]
    paths = [archive_path(cluster, vid, part.archive_id(manifest.incarnation, key, i))
             for i, vid in enumerate(part.placement)]
    assert all(p.stat().st_size > BLOCK for p in paths)  # each has a whole block
    return [first_page_cached(p) for p in paths]


def test_parity_and_parts_are_written_around_the_page_cache(cluster, s3, bucket):
    if not (direct_writes_work(cluster.data) and nowait_reads_work(cluster.data)):
        pytest.skip("this filesystem refuses O_DIRECT or reads that do not wait")
    data = os.urandom(8 * BLOCK + 999)  # 9 segments: archives of about 2.3 MiB
    s3.put_object(Bucket=bucket, Key="plain", Body=data)
    assert _cached_archives(cluster, bucket, "plain") == [True] * 4 + [False] * 2

    key = f"parts-{uuid.uuid4().hex[:6]}"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1,
                          Body=data)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert _cached_archives(cluster, bucket, key) == [False] * 6

    for name in ("plain", key):
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == data
    assert _cached_archives(cluster, bucket, key)[:4] == [True] * 4  # the GET read them
