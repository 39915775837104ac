"""Manifests of single-PUT and multipart objects, shared by the unit tests of reads."""

from __future__ import annotations

from shardgate.manifest import ObjectManifest, PartManifest


def part(number: int, size: int, **checksums: str) -> PartManifest:
    return PartManifest(number, size, "0" * 32, f"t{number}", ("v1",), checksums=checksums)


def multipart(*sizes: int, checksums: dict[str, str] | None = None) -> ObjectManifest:
    parts = tuple(part(n, size, CRC32=f"c{n}") for n, size in enumerate(sizes, 1))
    return ObjectManifest("b", "inc", "k", "v", 0.0, "o", size=sum(sizes),
                          etag=f"{'a' * 32}-{len(sizes)}", parts=parts,
                          checksums={"CRC32": "all-3"} if checksums is None else checksums,
                          checksum_type="COMPOSITE")


PLAIN = ObjectManifest("b", "inc", "k", "v", 0.0, "o", size=10, etag="b" * 32,
                       parts=(part(1, 10),), checksums={"CRC64NVME": "x"},
                       checksum_type="FULL_OBJECT")
