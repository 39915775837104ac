"""gateway.errors: the code table and S3Error as a value."""

from __future__ import annotations

import pytest

from gateway.errors import ERROR_TABLE, S3Error, quorum_lost


@pytest.mark.parametrize("code", sorted(ERROR_TABLE))
def test_every_code_has_an_error_status_and_message(code: str) -> None:
    status, message = ERROR_TABLE[code]
    assert 400 <= status <= 599
    assert message
    err = S3Error(code)
    assert err.status == status and err.message == message
    assert str(err) == f"{code}: {message}"


@pytest.mark.parametrize(("code", "status"), [
    ("AccessDenied", 403), ("NoSuchBucket", 404), ("NoSuchKey", 404),
    ("MethodNotAllowed", 405), ("MissingContentLength", 411), ("PreconditionFailed", 412),
    ("InvalidRange", 416), ("InternalError", 500), ("NotImplemented", 501),
    ("ServiceUnavailable", 503), ("SlowDown", 503), ("BucketAlreadyOwnedByYou", 409),
])
def test_well_known_statuses(code: str, status: int) -> None:
    assert S3Error(code).status == status


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="NoSuchThing"):
        S3Error("NoSuchThing")


def test_custom_message_extra_and_headers() -> None:
    err = S3Error("InvalidRange", "nope", extra={"RangeRequested": "bytes=9-"},
                  headers={"Content-Range": "bytes */3"})
    assert err.message == "nope" and err.status == 416
    assert err.extra == {"RangeRequested": "bytes=9-"}
    assert err.headers == {"Content-Range": "bytes */3"}
    assert S3Error("AccessDenied").extra == {} and S3Error("AccessDenied").headers == {}


def test_extra_is_not_shared_between_errors() -> None:
    a, b = S3Error("AccessDenied"), S3Error("AccessDenied")
    a.extra["x"] = "1"
    assert b.extra == {}


def test_quorum_lost_is_a_retryable_503() -> None:
    err = quorum_lost()
    assert err.code == "ServiceUnavailable" and err.status == 503
    assert "volumes" in err.message
    assert quorum_lost("two answered").message == "two answered"


def test_is_an_exception() -> None:
    with pytest.raises(S3Error) as exc:
        raise S3Error("NoSuchUpload")
    assert exc.value.code == "NoSuchUpload"
