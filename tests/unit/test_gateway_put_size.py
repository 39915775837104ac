"""gateway.put: the declared size follows the body's framing, which only a STREAMING-*
x-amz-content-sha256 makes aws-chunked."""

from __future__ import annotations

import pytest

from gateway.errors import S3Error
from gateway.put import MAX_OBJECT_SIZE, declared_size, expectations

HEX = "a" * 64


@pytest.mark.parametrize("encoding", ["aws-chunked", "gzip, aws-chunked", "AWS-CHUNKED,br"])
@pytest.mark.parametrize("payload", [HEX, "UNSIGNED-PAYLOAD"])
def test_plain_payload_with_aws_chunked_encoding_uses_content_length(encoding: str,
                                                                     payload: str) -> None:
    headers = {"content-encoding": encoding, "x-amz-content-sha256": payload,
               "content-length": "12"}
    assert declared_size(headers) == 12
    assert expectations(headers, MAX_OBJECT_SIZE).size == 12


def test_plain_payload_without_any_length_is_refused() -> None:
    with pytest.raises(S3Error) as err:
        expectations({"content-encoding": "aws-chunked", "x-amz-content-sha256": HEX},
                     MAX_OBJECT_SIZE)
    assert err.value.code == "MissingContentLength"


def test_streaming_payload_uses_decoded_length() -> None:
    headers = {"x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
               "content-encoding": "gzip", "content-length": "99",
               "x-amz-decoded-content-length": "7"}
    assert declared_size(headers) == 7
    del headers["x-amz-decoded-content-length"]
    with pytest.raises(S3Error) as err:
        declared_size(headers)
    assert err.value.code == "MissingContentLength"
