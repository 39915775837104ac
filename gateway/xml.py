"""S3 XML: building response documents and parsing request bodies safely.

Responses are built with ElementTree; request bodies are parsed with defusedxml so
entity tricks cannot blow up memory, and are size-capped before parsing. The one
exception is a listing page's up to 1,000 rows of one fixed shape: building and
serializing 7,000 tree nodes was a third of a page's time, so `rows_document` takes them
as text escaped as ElementTree escapes it (`text`), and the tests hold the two outputs
equal.

Keys may hold any character, but XML 1.0 text cannot carry C0 controls other than tab,
newline and carriage return, and a raw carriage return reads back as a newline. So a
carriage return goes out as `&#13;` (which reads back exactly) and the others as S3 writes
them, `&#x1;`: not well-formed XML 1.0, which is why clients list with encoding-type=url
(boto3 always does) to get such keys back exactly.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeET

from gateway.errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BODY = 1024 * 1024
_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
XML_DECLARATION = _DECL  # for documents assembled piecewise (gateway/keepalive.py)
# In ElementTree's UTF-8 output these bytes only ever come from text (attributes are
# escaped): C0 controls XML 1.0 text cannot hold raw, and U+FFFE / U+FFFF.
_NOT_XML_TEXT = re.compile(rb"[\x00-\x08\x0b-\x1f]|\xef\xbf[\xbe\xbf]")


_SECONDS: dict[int, str] = {}  # whole second -> "2009-10-12T17:50:30." (listings repeat them)


def iso8601(epoch: float) -> str:
    """S3's timestamp form in XML: 2009-10-12T17:50:30.000Z (milliseconds truncated from
    the microsecond the float rounds to, as datetime rounds it)."""
    seconds = int(epoch // 1)
    micros = round((epoch - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    head = _SECONDS.get(seconds)
    if head is None:
        if len(_SECONDS) >= 65536:
            _SECONDS.clear()
        head = _SECONDS[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
    return f"{head}{micros // 1000:03d}Z"


def http_date(epoch: float) -> str:
    """RFC 9110 IMF-fixdate, as Last-Modified uses."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def element(tag: str, children: Iterable[tuple[str, Any]] | None = None,
            namespace: bool = True) -> ET.Element:
    root = ET.Element(tag, {"xmlns": S3_NS} if namespace else {})
    if children:
        add_children(root, children)
    return root


def add_children(parent: ET.Element, children: Iterable[tuple[str, Any]]) -> None:
    """Append (tag, value) pairs; a value may be a list of pairs (a nested element),
    None (skipped), bool (true/false) or anything str() renders."""
    for tag, value in children:
        if value is None:
            continue
        child = ET.SubElement(parent, tag)
        if isinstance(value, list):
            add_children(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        else:
            child.text = str(value)


def _char_ref(match: re.Match[bytes]) -> bytes:
    char = match.group().decode()
    return b"&#13;" if char == "\r" else f"&#x{ord(char):x};".encode()


def _tostring(node: ET.Element) -> bytes:
    """ElementTree's UTF-8 serialization with the characters above written as references."""
    return _NOT_XML_TEXT.sub(_char_ref, ET.tostring(node, encoding="utf-8",
                                                     xml_declaration=False))


def render(root: ET.Element) -> bytes:
    return _DECL + _tostring(root)


def document(tag: str, children: Iterable[tuple[str, Any]]) -> bytes:
    return render(element(tag, children))


def text(value: object) -> str:
    """Element text escaped as ElementTree escapes it (for `rows_document`)."""
    return escape(str(value))


def rows_document(tag: str, children: Iterable[tuple[str, Any]], rows: list[str]) -> bytes:
    """`document(tag, children)` with pre-rendered child elements (each built with
    `text`) appended after `children`; characters XML 1.0 text cannot hold are written
    as references, as everywhere else."""
    head = _tostring(element(tag, children))
    close = f"</{tag}>".encode()
    if not head.endswith(close):  # no children: ElementTree closed it as <tag ... />
        head = head.removesuffix(b" />") + b">" + close
    body = "".join(rows).encode()
    return (_DECL + head[:-len(close)] + _NOT_XML_TEXT.sub(_char_ref, body) + close)


def stream_open(tag: str) -> bytes:
    """Start of a document whose children are sent one by one (`fragment`)."""
    return _DECL + f'<{tag} xmlns="{S3_NS}">'.encode()


def fragment(tag: str, children: Iterable[tuple[str, Any]]) -> bytes:
    """One child element of a streamed document."""
    node = ET.Element(tag)
    add_children(node, children)
    return _tostring(node)


def stream_close(tag: str) -> bytes:
    return f"</{tag}>".encode()


def error_document(code: str, message: str, request_id: str,
                   extra: dict[str, str] | None = None) -> bytes:
    root = ET.Element("Error")
    add_children(root, [("Code", code), ("Message", message), *(extra or {}).items(),
                        ("RequestId", request_id), ("HostId", request_id)])
    return render(root)


def local(tag: str) -> str:
    """Element name without its namespace: clients send S3 XML with or without xmlns."""
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes, limit: int = MAX_XML_BODY, expected_root: str | None = None
          ) -> ET.Element:
    """Parse a request body; callers with larger documents (CompleteMultipartUpload with
    10,000 parts and checksums, DeleteObjects with 1,000 keys) pass their own limit.

    `expected_root` is the document element the operation's schema names (with or without
    the S3 namespace): any other root is MalformedXML, as S3 answers, rather than a body
    whose children are silently not found.
    """
    if len(body) > limit:
        raise S3Error("MaxMessageLengthExceeded")
    if not body.strip():
        raise S3Error("MalformedXML")
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # defusedxml raises several types; all mean "bad XML" here
        raise S3Error("MalformedXML") from exc
    if expected_root is not None and local(root.tag) != expected_root:
        raise S3Error("MalformedXML", f"The XML you provided was not well-formed or did not "
                      f"validate against our published schema: expected a root element "
                      f"<{expected_root}>, not <{local(root.tag)}>.")
    return root


def child_text(node: ET.Element, name: str) -> str | None:
    for child in node:
        if local(child.tag) == name:
            return child.text or ""
    return None


def children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if local(c.tag) == name]
