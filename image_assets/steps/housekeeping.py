"""CDN housekeeping for one manufacturer: retire what no current kits CSV references,
delete it once the grace has passed, and report what was won.

For each backend of the chain (a fallback's copies too): what it holds for the
manufacturer comes from its bulk listing (the ledger when the listing fails),
what is live from every manufacturer's current kits CSV (``cdn/retention.py``).
Retirement dates are kept in the ledger entries (``retired_on``), so they survive
between runs, and a publish run that confirms an asset makes it live again. A run
deletes at most ``max_share`` of the manufacturer's assets on a backend (unless
its caller confirms more): a catalogue that shrank by half is cleaned over several
runs, or at once when someone said so. A deletion that fails stays retired and is
tried again next run; one that succeeds is gone from the backend and the ledger.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from image_assets.cdn.base import CdnBackend, CdnError
from image_assets.cdn.ledger import read_holdings, write_ledger
from image_assets.cdn.retention import (
    DEFAULT_GRACE,
    DEFAULT_MAX_SHARE,
    referenced_assets,
    review,
    run_limit,
)
from image_assets.layout import (
    KITS_CSV_FOLDER,
    RENDITIONS_FOLDER,
    RETIRED_RENDITIONS_KEY,
    is_kits_csv_key,
    renditions_prefix_of,
)
from image_assets.progress import Say
from image_assets.records import CdnAsset
from image_assets.storage import BlobNotFound, BlobStore


@dataclass
class BackendHousekeeping:
    storage: str
    held: int = 0
    held_bytes: int = 0
    retired_waiting: int = 0  # retired, grace not over
    due: int = 0  # grace over
    deleted: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    would_delete: list[tuple[str, int]] = field(default_factory=list)  # dry run: (id, bytes)
    failed: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None
    listing_error: str | None = None


@dataclass
class Housekeeping:
    manufacturer: str
    today: date
    dry_run: bool
    backends: list[BackendHousekeeping] = field(default_factory=list)

    @property
    def assets_deleted(self) -> int:
        return sum(len(b.deleted) for b in self.backends)

    @property
    def bytes_freed(self) -> int:
        return sum(b.bytes_freed for b in self.backends)

    @property
    def retired_waiting(self) -> int:
        return sum(b.retired_waiting for b in self.backends)

    @property
    def due_left(self) -> int:
        """Due but not deleted this run (the cap, a rate limit, a failure)."""
        return sum(b.due - len(b.deleted) for b in self.backends)


def current_images_cells(raw: BlobStore) -> list[list[dict]]:
    """The ``images`` cells of every manufacturer's current kits CSV. A CSV that cannot
    be read stops the run (``ValueError``): what it references is unknown, and an
    unknown reference must never read as "unreferenced"."""
    cells: list[list[dict]] = []
    for key in raw.list(KITS_CSV_FOLDER):
        if not is_kits_csv_key(key):
            continue
        try:
            text = raw.get(key).decode("utf-8")
            for row in csv.DictReader(io.StringIO(text)):
                images = json.loads(row.get("images") or "[]")
                if not isinstance(images, list):
                    raise ValueError("images is not a JSON array")
                cells.append([i for i in images if isinstance(i, dict)])
        except (BlobNotFound, UnicodeDecodeError, ValueError, csv.Error) as exc:
            raise ValueError(f"{key} cannot be read ({exc}): nothing is deleted") from None
    return cells


def housekeep(
    manufacturer: str,
    backends: Sequence[CdnBackend],
    ledgers: BlobStore,
    raw: BlobStore,
    today: date,
    *,
    grace: timedelta = DEFAULT_GRACE,
    max_share: float = DEFAULT_MAX_SHARE,
    dry_run: bool = False,
    say: Say = print,
) -> Housekeeping:
    """Review ``manufacturer``'s holdings on every backend and delete what is due
    (``dry_run``: only say what would go). ``ledgers`` is the private image store."""
    live = referenced_assets(current_images_cells(raw))
    result = Housekeeping(manufacturer, today, dry_run)
    for backend in backends:
        result.backends.append(
            _one_backend(
                manufacturer, backend, ledgers, live, today, grace, max_share, dry_run, say
            )
        )
    return result


def _one_backend(
    manufacturer: str,
    backend: CdnBackend,
    ledgers: BlobStore,
    live: set[tuple[str, str]],
    today: date,
    grace: timedelta,
    max_share: float,
    dry_run: bool,
    say: Say,
) -> BackendHousekeeping:
    holdings = read_holdings(ledgers, backend, manufacturer)
    outcome = BackendHousekeeping(backend.storage, listing_error=holdings.listing_error)
    held: dict[str, CdnAsset] = dict(holdings.recorded)
    if holdings.listed is not None:  # the listing is the truth; the ledger adds the bytes
        held = {
            public_id: holdings.recorded.get(public_id, listed)
            for public_id, listed in holdings.listed.items()
        }
    retired = {p: a.retired_on for p, a in held.items() if a.retired_on is not None}
    referenced = {public_id for storage, public_id in live if storage == backend.storage}
    reviewed = review(held, referenced, retired, today, grace)
    outcome.held = len(held)
    outcome.held_bytes = sum(a.bytes for a in held.values())
    outcome.due = len(reviewed.due)
    outcome.retired_waiting = reviewed.waiting()
    deleting = [held[p] for p in reviewed.due[: run_limit(len(held), max_share)]]
    say(
        f"{backend.storage}: {len(held)} assets held for {manufacturer}, "
        f"{len(reviewed.retired)} unreferenced ({outcome.retired_waiting} within the "
        f"{grace.days}-day grace), {len(reviewed.due)} due, "
        f"{len(deleting)} {'would be ' if dry_run else ''}deleted this run"
    )
    if dry_run:
        outcome.would_delete = [(a.public_id, a.bytes) for a in deleting]
        return outcome
    report = backend.delete_many(deleting) if deleting else None
    gone = set(report.deleted) if report else set()
    if report is not None:
        outcome.deleted = sorted(gone)
        outcome.bytes_freed = sum(held[p].bytes for p in gone)
        outcome.failed = report.failed
        outcome.stopped = report.stopped
        if report.stopped:
            say(f"{backend.storage}: deletion stopped, the rest waits: {report.stopped}")
    entries = {
        public_id: asset.model_copy(update={"retired_on": reviewed.retired.get(public_id)})
        for public_id, asset in sorted(held.items())
        if public_id not in gone
    }
    try:
        write_ledger(ledgers, backend.ledger_name, manufacturer, entries)
    except (OSError, CdnError) as exc:  # the deletions happened: say so, loudly
        raise RuntimeError(
            f"{backend.storage}: {len(gone)} assets were deleted but the ledger could not "
            f"be written ({exc}); the next listing will show them gone"
        ) from None
    return outcome


# ------------------------------------------------------------- old renditions (private)


@dataclass
class RenditionsHousekeeping:
    current: str  # the rendition config's fingerprint
    prefixes: int = 0  # outputs of one original under one config
    stale: int = 0  # under another config
    retired_waiting: int = 0
    deleted: list[str] = field(default_factory=list)
    files_deleted: int = 0
    bytes_freed: int = 0


def retire_old_renditions(
    images: BlobStore,
    raw: BlobStore,
    current: str,
    today: date,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    say: Say = print,
) -> RenditionsHousekeeping:
    """The private store's renditions made under an earlier config or renderer
    (``renditions/{xx}/{sha}/{fingerprint}/``), by the same rule as the CDN's: retired
    the first day they are seen, deleted once the grace has passed, never deleted
    twice. The caller runs it only once every partition has re-rendered under
    ``current``, so nothing still in use is ever stale."""
    by_prefix: dict[str, list[str]] = {}
    fingerprints: dict[str, str] = {}
    for key in images.list(RENDITIONS_FOLDER):
        found = renditions_prefix_of(key)
        if found is not None:
            by_prefix.setdefault(found[0], []).append(key)
            fingerprints[found[0]] = found[1]
    stale = {p for p in by_prefix if fingerprints[p] != current}
    try:
        known = json.loads(raw.get(RETIRED_RENDITIONS_KEY))
        retired = {p: date.fromisoformat(d) for p, d in known.items()}
    except (BlobNotFound, ValueError, TypeError, AttributeError):
        retired = {}
    reviewed = review(by_prefix, set(by_prefix) - stale, retired, today, grace)
    outcome = RenditionsHousekeeping(current, len(by_prefix), len(stale), reviewed.waiting())
    say(
        f"renditions: {len(by_prefix)} prefixes, {len(stale)} from another config "
        f"({outcome.retired_waiting} within the {grace.days}-day grace), "
        f"{len(reviewed.due)} {'would be ' if dry_run else ''}deleted"
    )
    if dry_run:
        outcome.deleted = list(reviewed.due)
        return outcome
    for prefix in reviewed.due:
        for key in by_prefix[prefix]:
            try:
                size = images.info(key).size
            except BlobNotFound:
                size = 0
            if images.delete(key):
                outcome.files_deleted += 1
                outcome.bytes_freed += size
        outcome.deleted.append(prefix)
        del reviewed.retired[prefix]
    raw.put(
        RETIRED_RENDITIONS_KEY,
        json.dumps({p: d.isoformat() for p, d in sorted(reviewed.retired.items())}).encode(),
        "application/json",
    )
    return outcome
