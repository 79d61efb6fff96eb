"""An in-memory blob store: for trying a registry entry (`image-assets scrape`) without writing files."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from image_assets.storage.base import BlobNotFound, ObjectInfo, validate_key


class MemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._modified: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._blobs[validate_key(key)]
            except KeyError:
                raise BlobNotFound(key) from None

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        with self._lock:
            self._blobs[validate_key(key)] = bytes(data)
            self._modified[key] = time.time()

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        with self._lock:
            if validate_key(key) in self._blobs:
                return False
            self._blobs[key] = bytes(data)
            self._modified[key] = time.time()
            return True

    def exists(self, key: str) -> bool:
        with self._lock:
            return validate_key(key) in self._blobs

    def delete(self, key: str) -> bool:
        with self._lock:
            self._modified.pop(validate_key(key), None)
            return self._blobs.pop(key, None) is not None

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = prefix.rstrip("/")
        with self._lock:
            keys = sorted(self._blobs)
        for key in keys:
            if not prefix or key == prefix or key.startswith(prefix + "/"):
                yield key

    def uri(self, key: str) -> str:
        return f"memory://{validate_key(key)}"

    def info(self, key: str) -> ObjectInfo:
        with self._lock:
            try:
                return ObjectInfo(self._modified[validate_key(key)], key, len(self._blobs[key]))
            except KeyError:
                raise BlobNotFound(key) from None

    def list_info(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in self.list(prefix):
            try:
                yield self.info(key)
            except BlobNotFound:
                continue  # deleted while listing
