"""gateway.xml: timestamp forms, response documents, and safe parsing of request bodies."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gateway.errors import S3Error
from gateway.xml import (
    MAX_XML_BODY,
    S3_NS,
    child_text,
    children,
    document,
    error_document,
    http_date,
    iso8601,
    local,
    parse,
)


@pytest.mark.parametrize(("epoch", "text"), [
    (0, "1970-01-01T00:00:00.000Z"),
    (1255368630, "2009-10-12T17:30:30.000Z"),
    (1255368630.5, "2009-10-12T17:30:30.500Z"),
    (1255368630.0429, "2009-10-12T17:30:30.042Z"),   # truncated to milliseconds
    (1700000000.999, "2023-11-14T22:13:20.999Z"),
])
def test_iso8601(epoch: float, text: str) -> None:
    assert iso8601(epoch) == text


@pytest.mark.parametrize(("epoch", "text"), [
    (784111777, "Sun, 06 Nov 1994 08:49:37 GMT"),   # the RFC 9110 example
    (1700000000.9, "Tue, 14 Nov 2023 22:13:20 GMT"),
])
def test_http_date(epoch: float, text: str) -> None:
    assert http_date(epoch) == text


def test_document_shape() -> None:
    body = document("ListAllMyBucketsResult", [
        ("Owner", [("ID", "alice"), ("DisplayName", None)]),
        ("IsTruncated", False), ("Versioned", True), ("MaxKeys", 1000), ("Skip", None),
    ])
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult')
    root = ET.fromstring(body)
    assert root.tag == f"{{{S3_NS}}}ListAllMyBucketsResult"
    assert child_text(root, "IsTruncated") == "false"
    assert child_text(root, "Versioned") == "true"
    assert child_text(root, "MaxKeys") == "1000"
    assert child_text(root, "Skip") is None
    owner = children(root, "Owner")[0]
    assert child_text(owner, "ID") == "alice" and child_text(owner, "DisplayName") is None


def test_document_escapes_values() -> None:
    nasty = 'a&b<c>d"e\'f </Key><Evil>x</Evil>'
    body = document("R", [("Key", nasty), ("Prefix", "été/日本")])
    assert b"<Evil>" not in body
    assert b"a&amp;b&lt;c&gt;d" in body
    root = ET.fromstring(body)
    assert child_text(root, "Key") == nasty
    assert child_text(root, "Prefix") == "été/日本"
    assert [local(c.tag) for c in root] == ["Key", "Prefix"]


def test_error_document_contents() -> None:
    body = error_document("NoSuchKey", "The specified key does not exist.", "REQ123",
                          {"Key": "a&b", "BucketName": "bkt"})
    root = ET.fromstring(body)
    assert root.tag == "Error"   # S3 error bodies carry no namespace
    assert [c.tag for c in root] == ["Code", "Message", "Key", "BucketName", "RequestId",
                                     "HostId"]
    assert child_text(root, "Code") == "NoSuchKey"
    assert child_text(root, "Key") == "a&b"
    assert child_text(root, "RequestId") == "REQ123" == child_text(root, "HostId")


def test_error_document_without_extra() -> None:
    root = ET.fromstring(error_document("AccessDenied", "Access Denied", "R"))
    assert [c.tag for c in root] == ["Code", "Message", "RequestId", "HostId"]


def test_parse_with_and_without_namespace() -> None:
    for xmlns in ("", f' xmlns="{S3_NS}"'):
        root = parse(f"<Delete{xmlns}><Quiet>true</Quiet><Object><Key>a</Key></Object>"
                     f"<Object><Key>b&amp;c</Key><VersionId/></Object></Delete>".encode())
        assert local(root.tag) == "Delete"
        assert child_text(root, "Quiet") == "true"
        objects = children(root, "Object")
        assert [child_text(o, "Key") for o in objects] == ["a", "b&c"]
        assert child_text(objects[1], "VersionId") == ""
        assert child_text(objects[0], "VersionId") is None
        assert children(root, "Missing") == []


def test_local() -> None:
    assert local(f"{{{S3_NS}}}Part") == "Part"
    assert local("Part") == "Part"


@pytest.mark.parametrize("body", [
    b"", b"   \n", b"not xml", b"<Delete><Object></Delete>", b"<a></b>", b"<?xml?>",
    b"<Delete>\xff\xfe</Delete>",
])
def test_parse_rejects_malformed(body: bytes) -> None:
    with pytest.raises(S3Error) as exc:
        parse(body)
    assert exc.value.code == "MalformedXML" and exc.value.status == 400


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>"""


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS,
    b'<!DOCTYPE d [<!ENTITY e "x">]><Delete><Object><Key>&e;</Key></Object></Delete>',
    b'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Key>&xxe;</Key></Delete>',
])
def test_parse_rejects_entities(body: bytes) -> None:
    with pytest.raises(S3Error) as exc:
        parse(body)
    assert exc.value.code == "MalformedXML"


def test_parse_size_cap() -> None:
    filler = b"<Part><PartNumber>1</PartNumber></Part>"
    head, tail = b"<CompleteMultipartUpload>", b"</CompleteMultipartUpload>"
    fits = head + filler * ((MAX_XML_BODY - len(head) - len(tail)) // len(filler)) + tail
    assert len(fits) <= MAX_XML_BODY
    assert len(children(parse(fits), "Part")) > 1000
    with pytest.raises(S3Error) as exc:
        parse(b" " * (MAX_XML_BODY + 1 - len(fits)) + fits)
    assert exc.value.code == "MaxMessageLengthExceeded" and exc.value.status == 400
