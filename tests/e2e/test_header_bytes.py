"""Header values that are not ASCII, end to end: boto3 sends them as UTF-8 and signs
those bytes (SigV4 and SigV2); the write is accepted, and the same bytes come back on
HEAD and GET (http.client reads them one character per byte)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import USERS

pytestmark = pytest.mark.e2e

DISPOSITION = 'attachment; filename="résumé 日本.txt"'
NOTE = "Hello World\xe9"


def wire(received: str) -> bytes:
    """The bytes a header value had on the wire, as boto3 hands it over."""
    return received.encode("latin-1")


@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_utf8_header_values_are_signed_stored_and_returned(cluster, bucket, signature):
    client = cluster.client(*USERS["alice"], signature_version=signature)

    def add_note(params, **_):
        params["headers"]["x-amz-meta-note"] = NOTE  # boto3's own Metadata is ASCII only

    client.meta.events.register("before-call.s3.PutObject", add_note)
    key = f"named-{signature}"
    client.put_object(Bucket=bucket, Key=key, Body=b"body", ContentDisposition=DISPOSITION)
    head = client.head_object(Bucket=bucket, Key=key)
    assert wire(head["ContentDisposition"]) == DISPOSITION.encode("utf-8")
    assert wire(head["Metadata"]["note"]) == NOTE.encode("utf-8")
    got = client.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"body"
    assert wire(got["ContentDisposition"]) == DISPOSITION.encode("utf-8")
