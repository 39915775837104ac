"""gateway.xml: the expected document element, and keys XML 1.0 text cannot carry raw."""

from __future__ import annotations

import pytest
from defusedxml import ElementTree as SafeET

from gateway.errors import S3Error
from gateway.xml import document, error_document, fragment, parse

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@pytest.mark.parametrize("body", [
    b"<Delete><Object><Key>k</Key></Object></Delete>",
    f'<Delete xmlns="{NS}"><Object><Key>k</Key></Object></Delete>'.encode(),
])
def test_expected_root_with_or_without_namespace(body: bytes) -> None:
    assert parse(body, expected_root="Delete") is not None


@pytest.mark.parametrize(("body", "expected"), [
    (b"<Object><Key>k</Key></Object>", "Delete"),
    (b"<NotDelete><Object><Key>k</Key></Object></NotDelete>", "Delete"),
    (b"<CompleteMultipartUpload/>", "Delete"),
    (b"<Delete/>", "CompleteMultipartUpload"),
    (b"<LocationConstraint>us-east-1</LocationConstraint>", "CreateBucketConfiguration"),
])
def test_other_root_is_malformed(body: bytes, expected: str) -> None:
    with pytest.raises(S3Error) as err:
        parse(body, expected_root=expected)
    assert (err.value.code, err.value.status) == ("MalformedXML", 400)
    assert f"<{expected}>" in err.value.message


def test_no_expected_root_accepts_any() -> None:
    assert parse(b"<Anything/>").tag == "Anything"


@pytest.mark.parametrize("key", ["a\nb", "tab\there", "ünï/键/🎉", "a&b<c>d\"e'f",
                                 "cr\rlf\r\n", "  spaced  "])
def test_keys_xml_can_carry_read_back_exactly(key: str) -> None:
    for body in (document("ListBucketResult", [("Contents", [("Key", key)])]),
                 error_document("NoSuchKey", "m", "RID", {"Key": key})):
        parsed = SafeET.fromstring(body)
        assert next(n.text for n in parsed.iter() if n.tag.endswith("Key")) == key
    assert SafeET.fromstring(fragment("Deleted", [("Key", key)]))[0].text == key


def test_carriage_return_is_a_reference() -> None:
    assert b"<Key>a&#13;b</Key>" in document("R", [("Key", "a\rb")])


@pytest.mark.parametrize(("key", "written"), [
    ("\x01", b"&#x1;"), ("a\x1fb", b"a&#x1f;b"), ("\x0b\x0c", b"&#xb;&#xc;"),
    ("\ufffe", b"&#xfffe;"), ("\x00", b"&#x0;"),
])
def test_characters_xml_cannot_carry_are_written_as_s3_writes_them(key: str,
                                                                   written: bytes) -> None:
    body = document("R", [("Key", key)])
    assert b"<Key>" + written + b"</Key>" in body
    assert not any(b in body for b in (b"\x00", b"\x01", b"\x0b", b"\x1f"))
