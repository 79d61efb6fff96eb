"""The CDN ledger: what the platform published to each backend, so a run knows what a
CDN holds without asking it once per image.

Cloudinary limits its Admin API per hour: one lookup per image per run ran a
catalogue of a few hundred images out of calls, and a failed lookup read as
"not there" sent unchanged images again. The ledger is written from upload
answers (the CDN's own word on what it stored) and reconciled each run with
one bulk listing of the manufacturer's folder. When the listing fails the
state is *unknown*, never "absent": what the ledger records is trusted, and
anything it does not record is uploaded with ``overwrite=false``, so nothing
unseen is ever replaced.

One ledger per (backend account, manufacturer), in the private image store:
runs of different partitions never write the same file, and every write is
atomic (the blob stores write temp + rename, S3 PUTs are atomic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from image_assets.cdn.base import CdnBackend, CdnError
from image_assets.layout import cdn_folder, cdn_ledger_key, cdn_ledger_prefix
from image_assets.records import CdnAsset
from image_assets.storage import BlobNotFound, BlobStore

_ENTRIES = TypeAdapter(dict[str, CdnAsset])
TargetState = Literal["absent", "other", "unknown"]


@dataclass(frozen=True)
class Holdings:
    """What one backend holds under one manufacturer's folder, as far as this run knows."""

    storage: str
    ledger_name: str
    recorded: dict[str, CdnAsset]  # the ledger: earlier runs' upload answers
    listed: dict[str, CdnAsset] | None  # this run's listing; None when it failed
    listing_error: str | None = None

    def held(self, public_id: str, sha256: str) -> CdnAsset | None:
        """The asset when the backend holds exactly these bytes, else None (also when
        it may, but nothing says so: see :meth:`needs_lookup`)."""
        recorded = self.recorded.get(public_id)
        if self.listed is None:  # unknown: trust what the CDN told us when we uploaded
            return recorded if recorded is not None and recorded.sha256 == sha256 else None
        listed = self.listed.get(public_id)
        if listed is None:
            return None
        if listed.sha256 == sha256:
            return listed
        if (
            recorded is not None
            and recorded.sha256 == sha256
            and recorded.etag
            and recorded.etag == listed.etag
        ):  # the listing carries no sha256 (S3): the ETag says it is what we uploaded
            return listed.model_copy(
                update={
                    "sha256": sha256,
                    "width": listed.width or recorded.width,
                    "height": listed.height or recorded.height,
                    "version": listed.version or recorded.version,
                }
            )
        return None

    def needs_lookup(self, public_id: str) -> bool:
        """Listed, but neither the listing nor the ledger says which bytes (an object
        published before the ledger existed): one lookup settles it."""
        if self.listed is None or public_id in self.recorded:
            return False
        listed = self.listed.get(public_id)
        return listed is not None and not listed.sha256

    def state(self, public_id: str) -> TargetState:
        """What an upload to ``public_id`` would meet: nothing, other bytes, or unknown."""
        if self.listed is None:
            return "other" if public_id in self.recorded else "unknown"
        return "other" if public_id in self.listed else "absent"

    def updated(self, confirmed: Iterable[CdnAsset]) -> dict[str, CdnAsset]:
        """The ledger after this run: what the listing still shows, plus what this run
        uploaded or confirmed."""
        entries = dict(self.recorded)
        if self.listed is not None:
            entries = {k: v for k, v in entries.items() if k in self.listed}
        for asset in confirmed:
            entries[asset.public_id] = asset
        return dict(sorted(entries.items()))


def read_holdings(store: BlobStore, backend: CdnBackend, manufacturer: str) -> Holdings:
    """The ledger of ``backend`` for ``manufacturer``, reconciled with one bulk listing."""
    recorded = read_ledger(store, backend.ledger_name, manufacturer)
    try:
        listed: dict[str, CdnAsset] | None = backend.inventory(cdn_folder(manufacturer))
        error = None
    except CdnError as exc:
        listed, error = None, str(exc)
    return Holdings(backend.storage, backend.ledger_name, recorded, listed, error)


def ledger_manufacturers(store: BlobStore, ledger_name: str) -> list[str]:
    """The manufacturers ``ledger_name`` has a ledger for."""
    prefix = cdn_ledger_prefix(ledger_name)
    return sorted(
        key.removeprefix(prefix).removesuffix(".json")
        for key in store.list(prefix)
        if key.startswith(prefix) and key.endswith(".json") and "/" not in key[len(prefix) :]
    )


def read_ledger(store: BlobStore, ledger_name: str, manufacturer: str) -> dict[str, CdnAsset]:
    """The recorded assets ({} when there is no ledger yet, or it cannot be read)."""
    try:
        return _ENTRIES.validate_python(
            json.loads(store.get(cdn_ledger_key(ledger_name, manufacturer)))
        )
    except (BlobNotFound, ValueError, ValidationError):
        return {}


def write_ledger(
    store: BlobStore, ledger_name: str, manufacturer: str, entries: dict[str, CdnAsset]
) -> None:
    store.put(
        cdn_ledger_key(ledger_name, manufacturer),
        _ENTRIES.dump_json(entries, indent=1),
        "application/json",
    )
