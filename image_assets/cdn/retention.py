"""What leaves the catalog leaves the CDN: the retention rule, in one place.

A published asset (a master, a rendition file, a fallback copy) is *live* while
some current kits CSV, of any manufacturer, references it by storage and public
id: a CSV row names the backend it points at (``storage``), so the S3 copy of an
image that has returned to Cloudinary is not kept alive by the Cloudinary one, and
an image another manufacturer points at (``shared_with``) is kept alive by that
manufacturer's CSV. An asset no CSV references is *retired* on the day that is
first seen, and the date is kept in the ledger; one that is referenced again is
simply live again. A retired asset is *due* once it has been retired for the grace
period, and only then deleted; after a deletion succeeds it is gone from the
backend and the ledger, so it is never deleted twice.

Pure: the caller reads the ledgers and CSVs and does the deleting
(``steps/housekeeping.py``); everything here is sets and dates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

DEFAULT_GRACE = timedelta(days=30)
DEFAULT_MAX_SHARE = 0.10  # of a vendor's held assets per run, unless the run confirms more

AssetRef = tuple[str, str]  # (storage, public id)


@dataclass(frozen=True)
class Review:
    """One manufacturer's holdings on one backend, reviewed on ``today``."""

    retired: dict[str, date]  # public id -> the day it was first seen unreferenced
    due: list[str]  # retired for the grace or longer: to delete, oldest first
    returned: list[str] = field(default_factory=list)  # were retired, referenced again

    def waiting(self) -> int:
        """Retired assets whose grace has not ended."""
        return len(self.retired) - len(self.due)


def referenced_assets(images_cells: Iterable[Iterable[Mapping]]) -> set[AssetRef]:
    """Every (storage, public id) the ``images`` cells of current kits CSVs name: each
    image's own asset and, on backends that store renditions as files, each rendition
    file (``{public_id}/{label}``; the labels are the ``renditions`` keys)."""
    found: set[AssetRef] = set()
    for cell in images_cells:
        for image in cell:
            storage, public_id = str(image.get("storage", "")), str(image.get("public_id", ""))
            if not storage or not public_id:
                continue
            found.add((storage, public_id))
            if storage in FILE_BACKENDS:
                for label in image.get("renditions") or {}:
                    found.add((storage, f"{public_id}/{label}"))
    return found


FILE_BACKENDS = frozenset({"s3", "local"})  # renditions are stored files beside the master


def review(
    held: Iterable[str],
    referenced: set[str],
    retired: Mapping[str, date],
    today: date,
    grace: timedelta = DEFAULT_GRACE,
) -> Review:
    """The retirement dates after ``today`` and what is due: ``held`` are the public ids
    the backend holds for this manufacturer, ``referenced`` those any current CSV names
    on this backend, ``retired`` the dates the ledger kept."""
    now_retired: dict[str, date] = {}
    returned: list[str] = []
    for public_id in sorted(set(held)):
        if public_id in referenced:
            if public_id in retired:
                returned.append(public_id)
            continue
        since = retired.get(public_id, today)
        now_retired[public_id] = min(since, today)
    due = sorted(
        (p for p, since in now_retired.items() if today - since >= grace),
        key=lambda p: (now_retired[p], p),
    )
    return Review(now_retired, due, returned)


def run_limit(held_count: int, max_share: float = DEFAULT_MAX_SHARE) -> int:
    """How many assets one run may delete for a vendor holding ``held_count``: the
    share rounded down, but at least one, so a small vendor is not stuck forever."""
    if held_count <= 0:
        return 0
    return max(1, math.floor(max_share * held_count))
