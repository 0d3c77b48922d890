"""Where archive objects live, behind one small interface: a local directory (`.data/archive/` by default) or
S3-compatible object storage (`FINTECH_ARCHIVE_URL=s3://bucket/prefix`). Keys are paths such as
`warm/events/2026-06.parquet.enc`; the tier is the key's first part."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from django.conf import settings


class ArchiveStoreError(Exception):
    pass


class ArchiveStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; raises ArchiveStoreError when it is missing."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> list[str]: ...

    def move(self, key: str, new_key: str) -> None:
        """Put the object under `new_key` (its tier is the key's first part: `cold/...` goes to the cold storage
        class), then remove `key`."""

    def describe(self) -> str: ...


class LocalStore:
    """A directory; objects are written to a temporary name and renamed, so a reader never sees half of one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ArchiveStoreError(f"key {key!r} leaves the archive directory")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.partial")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ArchiveStoreError(f"archive object {key} is missing from {self.describe()}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        found = (str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix) and not Path(k).name.startswith("."))

    def move(self, key: str, new_key: str) -> None:
        source, target = self._path(key), self._path(new_key)
        if not source.is_file():
            raise ArchiveStoreError(f"archive object {key} is missing from {self.describe()}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(source, target)

    def describe(self) -> str:
        return str(self.root)

    def wipe(self) -> None:
        """Tests only: remove the whole directory."""
        shutil.rmtree(self.root, ignore_errors=True)


def archive_store() -> ArchiveStore:
    """The store FINTECH_ARCHIVE_URL names: `s3://bucket/prefix`, a `file://` path, or empty for the default
    directory (FINTECH_ARCHIVE_DIR, `.data/archive/`)."""
    url = settings.FINTECH_ARCHIVE_URL
    if url.startswith("s3://"):
        from archive.s3 import S3Store

        parsed = urlparse(url)
        return S3Store(bucket=parsed.netloc, prefix=parsed.path.strip("/"))
    if url.startswith("file://"):
        return LocalStore(Path(urlparse(url).path))
    if url:
        raise ArchiveStoreError(f"FINTECH_ARCHIVE_URL must be s3://bucket/prefix or file:///path, not {url!r}")
    return LocalStore(Path(settings.FINTECH_ARCHIVE_DIR))
