"""An optional bounded disk cache of rendered results, for setups without a CDN in front.

Keyed by the response's ETag (which covers the source bytes, the chain and the
format) in a folder per public id, so everything rendered from one image can be
forgotten at once (an erased upload); written atomically, evicted
least-recently-used by total size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

from image_assets.storage.local import atomic_write


class DiskCache:
    def __init__(self, root: str | os.PathLike[str], max_bytes: int = 1 << 30):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def _folder(self, public_id: str) -> Path:
        return self.root / hashlib.sha256(public_id.encode()).hexdigest()[:32]

    def _path(self, public_id: str, key: str) -> Path:
        return self._folder(public_id) / hashlib.sha256(key.encode()).hexdigest()

    def get(self, public_id: str, key: str) -> bytes | None:
        path = self._path(public_id, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        os.utime(path)  # recently used
        return data

    def forget(self, public_id: str) -> int:
        """Every result rendered from ``public_id``; how many files went."""
        folder = self._folder(public_id)
        gone = 0
        with self._lock:
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
                gone += 1
            with contextlib.suppress(OSError):
                folder.rmdir()
        return gone

    def put(self, public_id: str, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        path = self._path(public_id, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        self._evict()

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def _evict(self) -> None:
        with self._lock:
            files = [
                (p.stat().st_atime, p.stat().st_mtime, p)
                for p in self.root.rglob("*")
                if p.is_file()
            ]
            total = sum(p.stat().st_size for _, _, p in files)
            for _, _, path in sorted(files, key=lambda f: max(f[0], f[1])):
                if total <= self.max_bytes:
                    break
                total -= path.stat().st_size
                path.unlink(missing_ok=True)
