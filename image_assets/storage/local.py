"""A blob store on the local filesystem, used by the `local` profile and the local CDN."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from image_assets.storage.base import BlobNotFound, InvalidKey, ObjectInfo, validate_key


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    A killed process leaves either the old file or the new one, never a torn file;
    stray temp files start with ``.tmp-`` and are ignored by :meth:`LocalBlobStore.list`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class LocalBlobStore:
    """Blob store rooted at a folder; keys map to relative paths."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        """The filesystem path for ``key`` (validated; never outside the root)."""
        try:
            path = (self.root / validate_key(key)).resolve()
        except (OSError, RuntimeError):  # a name over the limit, a symlink loop
            raise InvalidKey(f"invalid blob key {key[:100]!r}") from None
        if self.root not in path.parents:
            raise InvalidKey(f"key {key[:100]!r} resolves outside the store root")
        return path

    def get(self, key: str) -> bytes:
        """The bytes at ``key``. Every way a key can fail to be read is
        :class:`BlobNotFound`: missing, a folder, a path through a file, a name over the
        filesystem's limit, unreadable (an unsafe key is :class:`InvalidKey`)."""
        try:
            return self.path(key).read_bytes()
        except OSError:
            raise BlobNotFound(key) from None

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        atomic_write(self.path(key), data)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """The bytes go to a temp file first, then are hard-linked to the key: ``link``
        fails when the name exists, so the create is atomic and never shows torn bytes."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except (OSError, InvalidKey):
            return False

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                yield Path(dirpath, name).relative_to(self.root).as_posix()

    def info(self, key: str) -> ObjectInfo:
        try:
            stat = self.path(key).stat()
        except OSError:
            raise BlobNotFound(key) from None
        return ObjectInfo(stat.st_mtime, key, stat.st_size)

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Keys under ``prefix`` with their modification time and size."""
        for key in self.list(prefix):
            try:
                stat = self.path(key).stat()
            except FileNotFoundError:
                continue  # deleted while listing
            yield ObjectInfo(stat.st_mtime, key, stat.st_size)

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"
