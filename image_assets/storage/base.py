"""The blob-store interface.

Every byte the pipeline keeps (raw pages, originals, renditions, kits CSVs, state)
goes through this interface, so the `local` profile (a folder) and the `aws`
profile (S3) differ only in which implementation the resources build.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, order=True)
class ObjectInfo:
    """A stored object's last-modified time (epoch seconds), key and size."""

    modified: float
    key: str
    size: int = 0


class BlobNotFound(KeyError):
    """The key does not exist in the store."""


class InvalidKey(ValueError):
    """A key that could escape the store root or is otherwise unsafe."""


_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`InvalidKey`.

    Keys are ``/``-separated segments; empty, ``.`` and ``..`` segments, absolute
    keys, backslashes and control characters are refused (user file names with
    spaces or accents are fine). Callers build keys from sanitized ids, but the
    store checks again so that no scraped or uploaded name can ever address a
    file outside its root.
    """
    if not key or key.startswith("/") or len(key) > 1024 or _BAD_CHARS.search(key):
        raise InvalidKey(f"invalid blob key {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"invalid blob key {key!r}")
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Minimal key/value byte store with atomic writes."""

    def get(self, key: str) -> bytes:
        """Return the bytes at ``key`` or raise :class:`BlobNotFound`."""
        ...

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write ``data`` at ``key`` atomically: readers see old or new bytes, never a mix."""
        ...

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Write ``data`` at ``key`` only if nothing is there; True when this call wrote it.
        Of two writers that race, exactly one gets True (what leases are built on)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield keys under ``prefix`` (a folder-like prefix, no trailing ``/`` needed)."""
        ...

    def uri(self, key: str) -> str:
        """A URI a person can use to find the object (``file://`` or ``s3://``)."""
        ...

    def info(self, key: str) -> ObjectInfo:
        """Last-modified time and size of ``key``, or :class:`BlobNotFound`."""
        ...

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Like :meth:`list`, with each key's last-modified time and size."""
        ...
