"""The CDN backend interface.

A backend publishes bytes under a ``public_id`` (``kits/estes/1234``) and
answers with a :class:`~image_assets.records.CdnAsset`. ``inventory`` lists
what it holds under a prefix in bulk, so callers skip uploads of bytes the CDN
already holds without one request per image (see ``cdn/ledger.py``); a listing
that fails raises, because "unknown" is not "absent". ``upload`` takes
``overwrite`` (False: keep and return what is there) and ``invalidate``
(purge cached copies of a replaced asset). Backends that transform on delivery
(Cloudinary) need only the master; the others also receive the pre-made
renditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from image_assets.failures import FailureKind
from image_assets.records import CdnAsset


class CdnError(RuntimeError):
    """An upload, lookup or delete failed; the message never contains credentials.

    ``kind`` tells a refusal that retrying cannot fix (``CDN_AUTH``,
    ``CDN_REJECTED``) from one that a later run may get past (``CDN_TRANSIENT``).
    """

    def __init__(self, message: str, kind: FailureKind = FailureKind.CDN_REJECTED):
        super().__init__(message)
        self.kind = kind


@dataclass
class DeleteReport:
    """What one batched deletion did. An asset the backend no longer had counts as
    deleted (the goal is that it is gone); a failed one stays for the next run."""

    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # public id -> reason
    stopped: str | None = None  # why the rest was not tried (a rate limit): next run
    calls: int = 0  # requests sent to the backend


@runtime_checkable
class CdnBackend(Protocol):
    storage: str
    transforms_on_delivery: bool

    @property
    def ledger_name(self) -> str:
        """Which account or bucket this is, as a key segment (one ledger per account)."""
        ...

    def upload(
        self,
        data: bytes,
        public_id: str,
        *,
        format: str,
        sha256: str,
        width: int | None = None,
        height: int | None = None,
        overwrite: bool = True,
        invalidate: bool = False,
    ) -> CdnAsset: ...

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        """What the CDN holds for ``public_id`` (``format`` is a hint), or None."""
        ...

    def inventory(self, prefix: str) -> dict[str, CdnAsset]:
        """Everything held under ``prefix``, by public id; raises :class:`CdnError` when
        the backend cannot be listed. ``sha256`` is "" where the listing does not carry it."""
        ...

    def delete(self, public_id: str) -> bool: ...

    def delete_many(self, assets: Sequence[CdnAsset]) -> DeleteReport:
        """Delete ``assets`` in the fewest requests the backend allows (its batch
        APIs), purging cached copies where the backend caches."""
        ...

    def delivery_url(
        self,
        public_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        crop: str | None = None,
        format: str = "auto",
        quality: str = "auto",
        version: int | None = None,
    ) -> str:
        """A URL for the asset transformed as asked; ``version`` is the held asset's
        (callers that have it pass it, so no lookup is needed)."""
        ...


class StoredFileDelivery:
    """``delivery_url`` for backends that cannot transform: the stored file's URL.

    Their renditions are published beside the master, so callers pick a
    rendition's URL rather than asking for a transformation.
    """

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        raise NotImplementedError

    def delivery_url(
        self,
        public_id: str,
        *,
        width: int | None = None,
        height: int | None = None,
        crop: str | None = None,
        format: str = "auto",
        quality: str = "auto",
        version: int | None = None,
    ) -> str:
        asset = self.lookup(public_id)
        if asset is None:
            raise KeyError(public_id)
        return asset.secure_url
