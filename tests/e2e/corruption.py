"""Rotting fragments on purpose, for the end-to-end fault tests: flip bytes inside one
fragment of one segment on its volume, find the object's codec, wait for the flips to be
queued for healing, and read an object raw or through boto3 to see how a read fails."""

from __future__ import annotations

import http.client
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from erasure import Codec
from shardgate.manifest import ObjectManifest
from tests.e2e.conftest import USERS
from tests.e2e.helpers import (
    archive_path,
    sign,
    volume_json,
)

KIB = 1 << 10
MIB = 1 << 20
PYECLIB_HEADER = 80  # bytes before the payload of every pyeclib fragment


@dataclass(frozen=True)
class Flip:
    """Bytes flipped in one fragment of one segment: where, and what was there."""

    volume_id: str
    archive_id: str
    segment: int
    path: Path
    offset: int
    original: bytes

    def healed(self) -> bool:
        """The fragment holds its original bytes again (a healer rebuilt it)."""
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read(len(self.original)) == self.original


def corrupt(cluster, manifest: ObjectManifest, codec: Codec, index: int,
            segment: int) -> Flip:
    """Flip 16 bytes inside the payload of fragment `index` of `segment` (its CRC32C frame
    then fails)."""
    part = manifest.parts[0]
    volume_id = part.placement[index]
    assert volume_id is not None
    archive = part.archive_id(manifest.incarnation, manifest.key, index)
    path = archive_path(cluster, volume_id, archive)
    layout = codec.layout(part.size)
    assert path.stat().st_size == layout.archive_size
    length = layout.framed_length(segment)
    at = layout.archive_offset(segment) + PYECLIB_HEADER + (length - PYECLIB_HEADER) // 3
    with open(path, "r+b") as fh:
        fh.seek(at)
        original = fh.read(16)
        fh.seek(at)
        fh.write(bytes(b ^ 0xFF for b in original))
        fh.flush()
        os.fsync(fh.fileno())
    return Flip(volume_id, archive, segment, path, at, original)


def codec_of(manifest: ObjectManifest) -> Codec:
    params = manifest.erasure
    assert params is not None
    return Codec(params.k, params.m, params.ec_type, params.segment_size)


def heal_queued(cluster, flips: list[Flip], timeout: float = 15) -> list[Flip]:
    """Poll the holders' heal queues until each flip has been listed there as a checksum
    failure of its segment (or was already healed on disk, which needs an entry first);
    return the flips never seen."""
    missing = list(flips)
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        listed = set()
        for vid in {flip.volume_id for flip in missing}:
            for entry in volume_json(cluster, vid, "/heal")["entries"]:
                reason = entry["reason"] or ""
                if entry["archive_id"] and "segment" in reason:
                    segment = int(reason.rsplit("segment", 1)[1].split()[0])
                    listed.add((vid, entry["archive_id"], segment))
        missing = [f for f in missing
                   if (f.volume_id, f.archive_id, f.segment) not in listed and not f.healed()]
        time.sleep(0.05)
    return missing


def raw_get(cluster, bucket: str, key: str, byte_range: str | None = None):
    """GET by http.client: (status, Content-Length, body read until the server stopped
    sending, whether the connection was cut). http.client's read(n) answers b"" at an
    early EOF, so a body shorter than Content-Length followed by b"" is a cut connection."""
    url = f"{cluster.endpoint}/{bucket}/{quote(key)}"
    headers = {"Range": byte_range} if byte_range else {}
    signed = sign("GET", url, *USERS["alice"], headers)
    conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=60)
    try:
        conn.request("GET", f"/{bucket}/{quote(key)}", headers=signed)
        resp = conn.getresponse()
        length = int(resp.getheader("Content-Length", "-1"))
        body = bytearray()
        cut = False
        try:
            while chunk := resp.read(64 * KIB):
                body += chunk
        except (ConnectionError, http.client.IncompleteRead) as exc:
            body += getattr(exc, "partial", b"")
            cut = True
        cut = cut or (length >= 0 and len(body) < length)
        return resp.status, length, bytes(body), cut
    finally:
        conn.close()


def boto_get_fails(client, **kwargs) -> str:
    """GET by boto3 that must not succeed: the error seen (a 503 before the headers, or a
    body cut short); fails the test if a body reads cleanly."""
    try:
        resp = client.get_object(**kwargs)
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 503, exc
        return "503"
    try:
        body = resp["Body"].read()
    except (IncompleteReadError, ResponseStreamingError, ConnectionClosedError,
            ProtocolError) as exc:
        return type(exc).__name__
    pytest.fail(f"GET of an undecodable segment answered {len(body)} bytes cleanly "
                f"(Content-Length {resp['ContentLength']})")
