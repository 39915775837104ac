"""The manifest: what a gateway commits to volumes and reads back.

Every object is a list of parts (a single PUT is one part). Each part is erasure-coded on
its own and stored as one fragment archive per fragment index; `placement[i]` is the
volume holding fragment index i of that part (None where a write missed it, which the
heal queue records). Volumes store the manifest as opaque JSON beside a few summary
columns they need for listing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from erasure.framing import archive_seed


def archive_id(incarnation: str, key: str, tag: str, index: int) -> str:
    """Name of one fragment archive; S3 keys never become paths on a volume."""
    digest = hashlib.sha256(f"{incarnation}\0{key}\0{tag}\0{index}".encode()).hexdigest()
    return digest[:40]


@dataclass(frozen=True)
class ErasureParams:
    k: int
    m: int
    ec_type: str
    segment_size: int


@dataclass(frozen=True)
class PartManifest:
    number: int
    size: int
    etag: str
    archive_tag: str
    placement: tuple[str | None, ...]
    inline: bool = False
    checksums: dict[str, str] = field(default_factory=dict)
    # Fragment CRCs start from the archive's identity (erasure.archive_seed); parts
    # written before that have plain CRCs.
    seeded: bool = False

    def archive_id(self, incarnation: str, key: str, index: int) -> str:
        return archive_id(incarnation, key, self.archive_tag, index)

    def seeds(self, incarnation: str, key: str) -> dict[int, int] | None:
        """CRC seed by fragment index, or None for a part written unseeded."""
        if not self.seeded:
            return None
        return {i: archive_seed(self.archive_id(incarnation, key, i))
                for i in range(len(self.placement))}


@dataclass(frozen=True)
class ObjectManifest:
    bucket: str
    incarnation: str
    key: str
    version_id: str
    last_modified: float
    owner: str
    deleted: bool = False
    size: int = 0
    etag: str = ""
    content_type: str = "binary/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    checksum_type: str = ""
    erasure: ErasureParams | None = None
    parts: tuple[PartManifest, ...] = ()
    upload_id: str = ""  # the multipart upload this version completed, so a retry knows it
    # Tags given when the version was written; a later PutObjectTagging is an in-place
    # attribute with its own stamp, which wins (gateway/objects/attributes.py).
    tags: dict[str, str] = field(default_factory=dict)
    # Written while the bucket's versioning was not Enabled: S3 calls it version "null",
    # and a newer null version replaces it. The id stays time-ordered for the read rule.
    null_version: bool = True
    # A deleted version that S3 lists as a delete marker (versioning Enabled or
    # Suspended); a plain removal in a never-versioned bucket lists as nothing.
    delete_marker: bool = False
    # The version's ACL grants when written (gateway/acl_grants.py); None is the default,
    # owner-only. A later PutObjectAcl is an in-place attribute, like tags.
    acl: list[dict[str, str]] | None = None

    @property
    def public_version_id(self) -> str:
        """The id S3 clients see: "null" for a null version."""
        return "null" if self.null_version else self.version_id

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ObjectManifest:
        raw = dict(raw)
        if raw.get("erasure"):
            raw["erasure"] = ErasureParams(**raw["erasure"])
        raw["parts"] = tuple(
            PartManifest(**{**p, "placement": tuple(p["placement"])}) for p in raw.get("parts", ())
        )
        return cls(**raw)

    def with_changes(self, **changes: Any) -> ObjectManifest:
        return replace(self, **changes)

    def archives_on(self, volume_id: str) -> list[str]:
        """Archive ids this manifest keeps on one volume (for cleanup when superseded)."""
        out = []
        for part in self.parts:
            for index, holder in enumerate(part.placement):
                if holder == volume_id:
                    out.append(part.archive_id(self.incarnation, self.key, index))
        return out

    def summary(self) -> dict[str, Any]:
        """The columns a volume keeps for listing without parsing the manifest."""
        return {"size": self.size, "etag": self.etag, "last_modified": self.last_modified,
                "owner": self.owner}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_ATOMS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """What `dataclasses.asdict` returns (fresh dicts, lists and tuples; dataclasses as
    dicts) without its deep copy of every string and number, which took about 3 % of a
    small PUT's gateway time: atoms are immutable, so they are shared."""
    if isinstance(value, _ATOMS):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if is_dataclass(value):
        kind = type(value)
        names = _FIELD_NAMES.get(kind)
        if names is None:
            names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
        return {name: _plain(getattr(value, name)) for name in names}
    raise TypeError(f"a manifest holds no {type(value).__name__}")


def named_holders(copies: list[dict[str, Any]]) -> dict[str, Any]:
    """One version's manifest (dict form) naming, for each part and fragment index,
    the holder any of its copies names. Copies differ only in which holders they know
    of: a write or heal that missed a volume leaves that index empty in the copies it
    wrote, while the volume itself, and copies written later, name it."""
    first = copies[0]
    if first is None or all((c or {}).get("parts") == first.get("parts") for c in copies[1:]):
        return first
    parts = []
    for number, part in enumerate(first.get("parts", ())):
        holders = list(part["placement"])
        for copy in copies[1:]:
            if not copy or len(copy.get("parts", ())) != len(first["parts"]):
                continue
            others = copy["parts"][number]["placement"]
            holders = [mine if mine is not None else theirs
                       for mine, theirs in zip(holders, others, strict=True)]
        parts.append({**part, "placement": holders})
    return {**first, "parts": parts}
