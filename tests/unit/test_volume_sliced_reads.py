"""Sliced reads on a real volume app: only the asked slice of each fragment is sent,
between the running CRCs that tie it to the fragment's stored CRC, which the volume
checks over the whole fragment; a fragment that fails there is sent marked bad, whether
the volume read it from the page cache on its event loop or in a thread; a malformed or
mismatched request is a 400."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from erasure import Codec, FragmentCorrupt, SliceSpec, archive_seed, check_slice
from tests.nowait import nowait_reads_work
from tests.unit.test_volume_objects import aid, commit_body, vid
from tests.unit.volume_support import INC, running
from volume_server import fileio

pytestmark = pytest.mark.anyio
SEG = 8192
CODEC = Codec(4, 2, "isa_l_rs_vand", SEG)


@pytest.fixture
async def client(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(data_dir) as c:
        yield c


async def store_fragments(client: httpx.AsyncClient, key: str, rot_at: int | None = None
                          ) -> tuple[str, bytes, list[bytes]]:
    """Fragment 0 of three segments, framed with its archive's seed, stored as an archive;
    -> (archive id, the archive's bytes, the segments)."""
    archive = aid(key, vid(1))
    seed = archive_seed(archive)
    segments = [bytes([n]) * SEG for n in (1, 2, 3)]
    stored = b"".join(CODEC.encode_segment(s, [seed] * 6)[0] for s in segments)
    if rot_at is not None:
        stored = stored[:rot_at] + bytes([stored[rot_at] ^ 1]) + stored[rot_at + 1:]
    assert (await client.put(f"/stage/st-{key}", content=stored)).status_code == 200
    body = commit_body(key, vid(1), stage_id=f"st-{key}", archive_id=archive,
                       archives=[archive])
    assert (await client.post("/objects/commit", json=body)).status_code == 200
    return archive, stored, segments


def spec_for(archive: str, lo: int, hi: int, frames: int = 3) -> SliceSpec:
    """Bytes [lo, hi) of segment-local data in each of `frames` fragments."""
    framed = CODEC.framed_size(SEG)
    (a, b), = CODEC.data_slices(SEG, lo, hi).values()
    return SliceSpec(archive_seed(archive), ((framed, a, b),) * frames)


def pieces(body: bytes, spec: SliceSpec) -> list[bytes]:
    out, at = [], 0
    for size in spec.sent_sizes():
        out.append(bytes(check_slice(body[at:at + size], 0)))
        at += size
    assert at == len(body)
    return out


@pytest.fixture(params=["cached", "thread"])
def read_path(request, data_dir: Path, monkeypatch) -> str:
    """Where the volume's archive reads run: on its event loop from the page cache, or
    in a worker thread (reads without waiting turned off)."""
    if request.param == "cached":
        data_dir.mkdir(parents=True, exist_ok=True)
        if not nowait_reads_work(data_dir):
            pytest.skip("this filesystem refuses reads without waiting")
    else:
        monkeypatch.setattr(fileio, "_nowait", False)
    return request.param


def reads(where: str) -> float:
    return fileio.READS.labels(where)._value.get()


async def test_only_the_slices_are_sent_and_they_check(client, read_path) -> None:
    archive, stored, segments = await store_fragments(client, "k")
    spec = spec_for(archive, 100, 900)
    r = await client.get(f"/archives/{archive}", params={"slices": spec.encode()},
                         headers={"Range": f"bytes=0-{len(stored) - 1}"})
    assert r.status_code == 200 and int(r.headers["content-length"]) == spec.sent
    assert r.headers["x-slices"] == "3"
    assert pieces(r.content, spec) == [s[100:900] for s in segments]
    assert spec.sent == 3 * (800 + 8) < len(stored) / 2
    r = await client.get(f"/archives/{archive}", headers={"Range": "bytes=5-20000"})
    assert r.status_code == 206 and r.content == stored[5:20001]


async def test_rot_the_volume_does_not_send_still_fails_the_slice(client, read_path) -> None:
    framed = CODEC.framed_size(SEG)
    archive, stored, _ = await store_fragments(client, "rot", rot_at=framed + framed - 10)
    spec = spec_for(archive, 100, 900)
    before = reads(read_path)
    r = await client.get(f"/archives/{archive}", params={"slices": spec.encode()},
                         headers={"Range": f"bytes=0-{len(stored) - 1}"})
    assert r.status_code == 200
    first, second, third = spec.sent_sizes()
    assert check_slice(r.content[:first], 0)  # segment 0 is intact
    with pytest.raises(FragmentCorrupt):  # segment 1's rot lies past its slice
        check_slice(r.content[first:first + second], 0)
    assert check_slice(r.content[first + second:], 0)
    assert reads(read_path) == before + 1


async def test_read_along_with_latest_sends_slices(client) -> None:
    archive, stored, segments = await store_fragments(client, "along")
    framed = CODEC.framed_size(SEG)
    spec = spec_for(archive, 0, 10, frames=1)
    r = await client.get("/objects/latest", params={
        "incarnation": INC, "key": "along", "version": vid(1), "archive": archive,
        "first": str(framed), "last": str(2 * framed - 1), "slices": spec.encode()})
    assert r.status_code == 200
    rows = int(r.headers["x-rows-length"])
    assert int(r.headers["x-archive-bytes"]) == spec.sent == 10 + 8
    assert r.headers["x-slices"] == "1"
    assert pieces(r.content[rows:], spec) == [segments[1][:10]]


async def test_a_range_past_the_archive_is_a_416(client) -> None:
    archive, stored, _ = await store_fragments(client, "past")
    framed = CODEC.framed_size(SEG)
    spec = spec_for(archive, 0, 10, frames=1)
    r = await client.get(f"/archives/{archive}", params={"slices": spec.encode()},
                         headers={"Range": f"bytes={len(stored)}-{len(stored) + framed - 1}"})
    assert r.status_code == 416


@pytest.mark.parametrize("slices, range_header", [
    ("nonsense", "bytes=0-99"),
    ("1;100:0-97", "bytes=0-99"),  # the slice runs into the CRC
    ("1;100:50-40", "bytes=0-99"),
    ("1;100:0-10", "bytes=0-199"),  # covers 100 bytes, the range 200
    ("1;100:0-10", None),
    (f"{1 << 32};100:0-10", "bytes=0-99"),
    ("1;100:0-10", "bytes=0-"),  # a sliced read names both ends
    ("\u0661;100:0-10", "bytes=0-99"),  # digits are ASCII
    ("1;" + ",".join(["10:0-1"] * 65), "bytes=0-649"),  # at most 64 fragments
])
async def test_a_bad_sliced_read_is_a_400(client, slices, range_header) -> None:
    archive, _, _ = await store_fragments(client, "bad")
    headers = {"Range": range_header} if range_header else {}
    r = await client.get(f"/archives/{archive}", params={"slices": slices}, headers=headers)
    assert r.status_code == 400, r.text
    r = await client.head(f"/archives/{archive}", params={"slices": "1;100:0-10"})
    assert r.status_code == 400


def test_a_spec_reads_back_as_written() -> None:
    spec = SliceSpec(7, ((100, 0, 96), (50, 3, 4)))
    assert SliceSpec.parse(spec.encode()) == spec
    assert spec.span == 150 and spec.sent == 96 + 1 + 16
