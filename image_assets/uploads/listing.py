"""Which incoming objects are new since a cursor, in a stable order.

The cursor is the (last-modified, key) of the last object handed out, never a
list of files: objects are ordered by (last-modified, key), so files sharing a
timestamp are told apart by key, and deleted files simply stop appearing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from image_assets.storage.base import ObjectInfo


@dataclass(frozen=True)
class ListingCursor:
    modified: float = 0.0
    key: str = ""

    def to_json(self) -> str:
        return json.dumps({"modified": self.modified, "key": self.key})

    @classmethod
    def from_json(cls, text: str | None) -> ListingCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(float(data.get("modified", 0.0)), str(data.get("key", "")))


def new_objects(
    objects: list[ObjectInfo], cursor: ListingCursor, limit: int
) -> tuple[list[ObjectInfo], ListingCursor]:
    """At most ``limit`` objects after ``cursor``, oldest first, and the cursor after them."""
    fresh = sorted(o for o in objects if (o.modified, o.key) > (cursor.modified, cursor.key))
    batch = fresh[:limit]
    if not batch:
        return [], cursor
    last = batch[-1]
    return batch, ListingCursor(last.modified, last.key)
