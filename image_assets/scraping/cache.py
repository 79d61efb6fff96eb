"""Per-URL validators (ETag/Last-Modified) plus facts about what was stored for them.

Kept in the blob store as one JSON document per vendor and kind (pages,
images), so re-crawls send conditional requests and a 304 reuses stored bytes.
"""

from __future__ import annotations

import json
import threading

from image_assets.scraping.http import Validators
from image_assets.storage import BlobNotFound, BlobStore


class ValidatorCache:
    """Thread-safe map ``url -> entry``; ``save()`` writes it back atomically if changed."""

    def __init__(self, store: BlobStore, key: str):
        self.store = store
        self.key = key
        self._lock = threading.Lock()
        try:
            self.entries: dict[str, dict] = json.loads(store.get(key))
        except (BlobNotFound, json.JSONDecodeError):
            self.entries = {}
        self._dirty = False

    def validators(self, url: str) -> Validators | None:
        entry = self.get(url)
        if not entry:
            return None
        return Validators(entry.get("etag"), entry.get("last_modified"))

    def get(self, url: str) -> dict | None:
        with self._lock:
            entry = self.entries.get(url)
            return dict(entry) if entry else None

    def put(self, url: str, **entry: object) -> None:
        with self._lock:
            if self.entries.get(url) != entry:
                self.entries[url] = entry
                self._dirty = True

    def save(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            payload = json.dumps(self.entries, sort_keys=True, indent=0).encode()
            self._dirty = False
        self.store.put(self.key, payload, "application/json")
