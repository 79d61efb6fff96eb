"""The `local` CDN: a folder served (or opened) as-is; the embedded default.

Files live at ``{public_id}.{ext}`` under the CDN root and a small JSON record
per public_id under ``_meta/`` (see ``layout.py``) remembers sha256, size and dimensions so a
re-run can skip unchanged uploads without reading the image bytes.
"""

from __future__ import annotations

import json
import time

from image_assets.cdn.base import StoredFileDelivery
from image_assets.layout import CDN_META_PREFIX, cdn_meta_key, cdn_object_key
from image_assets.records import CdnAsset
from image_assets.storage import BlobNotFound, LocalBlobStore, validate_key


class LocalCdn(StoredFileDelivery):
    storage = "local"
    transforms_on_delivery = False

    def __init__(self, root: str, base_url: str | None = None):
        self.store = LocalBlobStore(root)
        self.base_url = (base_url or self.store.root.as_uri()).rstrip("/")

    @property
    def ledger_name(self) -> str:
        return "local"

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
        invalidate: bool = False,  # files are served as they are: nothing is cached
    ) -> CdnAsset:
        key = cdn_object_key(validate_key(public_id), format)
        previous = self.lookup(public_id)
        if previous is not None and not overwrite:
            return previous
        if previous and previous.format != format:
            self.store.delete(cdn_object_key(public_id, previous.format))
        self.store.put(key, data)
        url = f"{self.base_url}/{key}"
        asset = CdnAsset(
            public_id=public_id,
            storage="local",
            url=url,
            secure_url=url,
            version=int(time.time()),
            bytes=len(data),
            width=width,
            height=height,
            format=format,
            sha256=sha256,
        )
        self.store.put(self._meta_key(public_id), asset.model_dump_json().encode())
        return asset

    def lookup(self, public_id: str, format: str | None = None) -> CdnAsset | None:
        try:
            asset = CdnAsset.model_validate(json.loads(self.store.get(self._meta_key(public_id))))
        except (BlobNotFound, ValueError):
            return None
        return asset if self.store.exists(cdn_object_key(public_id, asset.format)) else None

    def inventory(self, prefix: str) -> dict[str, CdnAsset]:
        """The records under ``prefix`` whose file is there (local reads, no network)."""
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
        self.store.delete(self._meta_key(public_id))
        if asset is None:
            return False
        return self.store.delete(cdn_object_key(public_id, asset.format))
