"""gateway.attributes: the requested names and the GetObjectAttributes document."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from gateway.attributes import object_parts, render, requested_attributes
from gateway.errors import S3Error
from tests.unit.manifest_samples import PLAIN
from tests.unit.manifest_samples import multipart as _multipart

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"




@pytest.mark.parametrize("header", [None, "", " , ", "ETag,Bogus", "etag"])
def test_attribute_names_are_checked(header: str | None) -> None:
    with pytest.raises(S3Error) as err:
        requested_attributes(header)
    assert err.value.code == "InvalidArgument"


def test_attribute_names() -> None:
    assert requested_attributes("ETag, ObjectSize") == {"ETag", "ObjectSize"}


def _xml(body: bytes) -> ET.Element:
    root = ET.fromstring(body)
    assert root.tag == f"{NS}GetObjectAttributesResponse"
    return root


def test_attributes_of_a_multipart_object() -> None:
    names = {"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"}
    root = _xml(render(_multipart(5, 6, 7), names, 0, 1000))
    assert [c.tag[len(NS):] for c in root] == ["ETag", "Checksum", "ObjectParts",
                                               "StorageClass", "ObjectSize"]
    assert root.findtext(f"{NS}ETag") == f"{'a' * 32}-3"
    assert root.findtext(f"{NS}Checksum/{NS}ChecksumCRC32") == "all-3"
    assert root.findtext(f"{NS}Checksum/{NS}ChecksumType") == "COMPOSITE"
    assert root.findtext(f"{NS}StorageClass") == "STANDARD"
    assert root.findtext(f"{NS}ObjectSize") == "18"
    parts = root.find(f"{NS}ObjectParts")
    assert parts is not None
    assert parts.findtext(f"{NS}PartsCount") == "3"
    assert parts.findtext(f"{NS}IsTruncated") == "false"
    listed = [(p.findtext(f"{NS}PartNumber"), p.findtext(f"{NS}Size"),
               p.findtext(f"{NS}ChecksumCRC32")) for p in parts.findall(f"{NS}Part")]
    assert listed == [("1", "5", "c1"), ("2", "6", "c2"), ("3", "7", "c3")]


def test_attributes_of_a_plain_object_have_no_parts() -> None:
    root = _xml(render(PLAIN, {"ObjectParts", "ETag"}, 0, 1000))
    assert [c.tag[len(NS):] for c in root] == ["ETag"]


def test_object_parts_pages() -> None:
    fields = dict(object_parts(_multipart(1, 2, 3, 4), 1, 2))
    assert (fields["PartNumberMarker"], fields["NextPartNumberMarker"], fields["MaxParts"],
            fields["IsTruncated"], fields["PartsCount"]) == (1, 3, 2, True, 4)
    numbers = [dict(v)["PartNumber"] for k, v in object_parts(_multipart(1, 2, 3, 4), 1, 2)
               if k == "Part"]
    assert numbers == [2, 3]
    assert dict(object_parts(_multipart(1, 2, 3, 4), 2, 2))["IsTruncated"] is False


def test_parts_of_an_object_without_checksum_are_not_listed() -> None:
    fields = object_parts(_multipart(1, 2, checksums={}), 0, 1000)
    assert [k for k, _ in fields if k == "Part"] == []
    assert dict(fields)["PartsCount"] == 2
