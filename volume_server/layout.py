"""The data directory layout, so that no name from a request ever becomes a path by itself.

Archive ids and stage ids are validated here before any path is built; fragment archives
fan out over two directory levels (`fragments/aa/bb/<archive_id>`) to keep directories
small.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from shardgate.config import ConfigError

FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
LOCK_FILE = "LOCK"
INDEX_FILE = "index.sqlite"
STAGING_DIR = "staging"
FRAGMENTS_DIR = "fragments"
PART_SUFFIX = ".part"

_ARCHIVE_ID = re.compile(r"[0-9a-f]{40}")
_STAGE_ID = re.compile(r"[A-Za-z0-9_.-]{1,96}")


class LayoutError(ConfigError):
    """The data directory belongs to another volume or another on-disk format."""


class VolumeLocked(LayoutError):
    """Another process serves this data directory: two would corrupt each other's state."""


class BadName(ValueError):
    """An archive id or stage id that could name something outside its directory."""


def check_archive_id(archive_id: object) -> str:
    if not isinstance(archive_id, str) or not _ARCHIVE_ID.fullmatch(archive_id):
        raise BadName(f"bad archive id {archive_id!r}")
    return archive_id


def check_stage_id(stage_id: object) -> str:
    if (
        not isinstance(stage_id, str)
        or not _STAGE_ID.fullmatch(stage_id)
        or stage_id.startswith(".")
        or stage_id.endswith(PART_SUFFIX)
    ):
        raise BadName(f"bad stage id {stage_id!r}")
    return stage_id


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Layout:
    """Paths inside one volume's data directory."""

    def __init__(self, data_dir: str | Path, volume_id: str) -> None:
        self.root = Path(data_dir).resolve()
        self.volume_id = volume_id
        self.staging = self.root / STAGING_DIR
        self.fragments = self.root / FRAGMENTS_DIR
        self.index_path = self.root / INDEX_FILE
        self.lock_path = self.root / LOCK_FILE
        self._lock_fd: int | None = None
        self.data_id = ""  # names this data directory's life: a new one, a new id
        self.created = False  # prepare() made the directory (it was empty or absent)

    def prepare(self) -> None:
        """Lock, create or check the directory, and empty staging (leftovers of a crash).

        The lock comes first: a second process on the same directory must not empty the
        staging area under the first one's in-flight writes.
        """
        self.lock()  # a no-op when the caller already holds it
        try:
            self._check_or_write_format()
            self.fragments.mkdir(exist_ok=True)
            if self.staging.exists():
                shutil.rmtree(self.staging)
            self.staging.mkdir()
            fsync_dir(self.root)
        except BaseException:
            self.unlock()
            raise

    def lock(self) -> None:
        """Take the directory's exclusive lock for this process, or raise VolumeLocked.

        flock is released by the kernel when the process dies, so a crash never leaves
        the directory locked. The holder's pid is written into the file for the message.
        """
        if self._lock_fd is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise VolumeLocked(f"{self.root}: data directory is in use by another volume "
                               f"process (pid {holder} holds {self.lock_path})") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock (closing the descriptor drops the flock)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def check(self) -> None:
        """Raise LayoutError if the directory is not (or cannot become) this volume's."""
        path = self.root / FORMAT_FILE
        if not path.exists():
            if (self.root / INDEX_FILE).exists() or self.fragments.exists():
                raise LayoutError(f"{self.root}: holds volume data but no {FORMAT_FILE} file")
            return
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LayoutError(f"{path}: unreadable format file: {exc}") from exc
        if not isinstance(stored, dict) or stored.get("format") != FORMAT_VERSION:
            raise LayoutError(f"{path}: format {stored!r} is not format {FORMAT_VERSION}")
        if stored.get("volume_id") != self.volume_id:
            raise LayoutError(f"{path}: data directory belongs to volume "
                              f"{stored.get('volume_id')!r}, not {self.volume_id!r}")

    def _check_or_write_format(self) -> None:
        """Check the FORMAT file, or write one for a new directory. It carries the
        directory's data id: a replaced disk under an old volume id gets a new one, which
        is how the cluster tells that the volume lost what it held."""
        self.check()
        path = self.root / FORMAT_FILE
        stored = json.loads(path.read_text()) if path.exists() else None
        if stored is not None and stored.get("data_id"):
            self.data_id = stored["data_id"]
            return
        self.created = stored is None
        self.data_id = uuid.uuid4().hex
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({"format": FORMAT_VERSION, "volume_id": self.volume_id,
                       "data_id": self.data_id}, fh)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def archive_path(self, archive_id: str) -> Path:
        check_archive_id(archive_id)
        return self.fragments / archive_id[:2] / archive_id[2:4] / archive_id

    def staged_path(self, stage_id: str) -> Path:
        return self.staging / check_stage_id(stage_id)

    def partial_path(self, stage_id: str) -> Path:
        return self.staging / (check_stage_id(stage_id) + PART_SUFFIX)

    def install(self, staged: Path, archive_id: str) -> Path:
        """Rename a staged file into fragments/ and fsync every directory it touched.

        Blocking: call it from a worker thread.
        """
        target = self.archive_path(archive_id)
        created: list[Path] = []
        for directory in (target.parent.parent, target.parent):
            if not directory.exists():
                try:
                    directory.mkdir()
                    created.append(directory)
                except FileExistsError:
                    pass
        os.replace(staged, target)
        fsync_dir(target.parent)
        for directory in reversed(created):
            fsync_dir(directory.parent)
        return target
