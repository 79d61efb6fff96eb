"""CDNs that are a blob store: the `local` folder (the embedded default's files) and
the base of the `self` backend (files served by ``image-assets serve``).

Files live at ``{public_id}.{ext}`` and a small JSON record per public_id under
``_meta/`` (see ``layout.py``) remembers sha256, size and dimensions, so a
re-run knows what is held without reading the image bytes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from image_assets.cdn.base import DeleteReport, StoredFileDelivery
from image_assets.layout import CDN_META_PREFIX, cdn_meta_key, cdn_object_key
from image_assets.records import CdnAsset
from image_assets.storage import BlobNotFound, BlobStore, InvalidKey, LocalBlobStore, validate_key


class StoredCdn:
    """Masters (and renditions) kept in a blob store under their public ids."""

    storage = "local"

    def __init__(self, store: BlobStore):
        self.store = store

    def asset_url(self, public_id: str, fmt: str, version: int | None) -> str:
        raise NotImplementedError

    def _meta_key(self, public_id: str) -> str:
        return cdn_meta_key(validate_key(public_id))

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
        invalidate: bool = False,  # files are served as they are: nothing is cached here
    ) -> CdnAsset:
        key = cdn_object_key(validate_key(public_id), format)
        previous = self.lookup(public_id)
        if previous is not None and not overwrite:
            return previous
        if previous and previous.format != format:
            self.store.delete(cdn_object_key(public_id, previous.format))
        self.store.put(key, data)
        version = int(time.time())
        url = self.asset_url(public_id, format, version)
        asset = CdnAsset(
            public_id=public_id,
            storage=self.storage,
            url=url,
            secure_url=url,
            version=version,
            bytes=len(data),
            width=width,
            height=height,
            format=format,
            sha256=sha256,
        )
        self.store.put(self._meta_key(public_id), asset.model_dump_json().encode())
        return asset

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        """The held asset, its URLs made now (a changed base URL needs no re-upload)."""
        asset = self._record(public_id)
        if asset is None or not self.store.exists(cdn_object_key(public_id, asset.format)):
            return None
        url = self.asset_url(public_id, asset.format, asset.version)
        return asset.model_copy(
            update={"storage": self.storage, "url": url, "secure_url": url, "s3_url": None}
        )

    def read(self, public_id: str) -> tuple[CdnAsset, bytes]:
        """The held record (URLs as stored) and its bytes; ``KeyError`` when nothing is held.

        The image service's path: one record read and one object read, no URL made
        (so no SDK loaded) and no separate existence check.
        """
        asset = self._record(public_id)
        if asset is None:
            raise KeyError(public_id)
        try:
            return asset, self.store.get(cdn_object_key(public_id, asset.format))
        except BlobNotFound:
            raise KeyError(public_id) from None

    def _record(self, public_id: str) -> CdnAsset | None:
        try:
            return CdnAsset.model_validate(json.loads(self.store.get(self._meta_key(public_id))))
        except (BlobNotFound, ValueError):
            return None

    def inventory(self, prefix: str) -> dict[str, CdnAsset]:
        """The records under ``prefix`` whose file is there (no network for a folder)."""
        found: dict[str, CdnAsset] = {}
        meta_prefix = f"{CDN_META_PREFIX}/{validate_key(prefix.rstrip('/'))}/"
        for key in self.store.list(meta_prefix):
            public_id = key[len(CDN_META_PREFIX) + 1 :].removesuffix(".json")
            asset = self.lookup(public_id)
            if asset is not None:
                found[public_id] = asset
        return found

    def delete(self, public_id: str) -> bool:
        asset = self.lookup(public_id)
        if asset is None:
            self.store.delete(self._meta_key(public_id))
            return False
        # the file first: a record without its file is not served (lookup), a file
        # without its record would be
        deleted = self.store.delete(cdn_object_key(public_id, asset.format))
        self.store.delete(self._meta_key(public_id))
        return deleted

    def delete_many(self, assets: Sequence[CdnAsset]) -> DeleteReport:
        """Files and their records, one by one (a folder or a bucket has no purge)."""
        report = DeleteReport()
        for asset in assets:
            report.calls += 1
            try:
                self.delete(asset.public_id)
            except (OSError, InvalidKey) as exc:
                report.failed[asset.public_id] = f"{type(exc).__name__}: {exc}"
                continue
            report.deleted.append(asset.public_id)
        return report


class LocalCdn(StoredCdn, StoredFileDelivery):
    """A folder served (or opened) as-is; the embedded default."""

    storage = "local"
    transforms_on_delivery = False

    def __init__(self, root: str, base_url: str | None = None):
        store = LocalBlobStore(root)
        super().__init__(store)
        self.base_url = (base_url or store.root.as_uri()).rstrip("/")

    @property
    def ledger_name(self) -> str:
        return "local"

    def asset_url(self, public_id: str, fmt: str, version: int | None) -> str:
        return f"{self.base_url}/{cdn_object_key(public_id, fmt)}"
