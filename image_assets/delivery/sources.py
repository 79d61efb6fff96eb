"""What the service may serve, by public id: the masters the `self` CDN backend holds
(the kits CSV's public ids) and the masters of activated uploads
(``uploads/<name>``, the public area's ``<name>/master.<ext>``).

Nothing else: originals of vendor images stay in the private image store, and an
upload is reachable only once activated (its files are public then).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from image_assets.cdn.local import StoredCdn
from image_assets.layout import ACTIVATED_PUBLIC_ID_PREFIX, activated_upload_file
from image_assets.storage import BlobNotFound, BlobStore, InvalidKey, validate_key

UPLOADS = ACTIVATED_PUBLIC_ID_PREFIX
MASTER_FILES = ("master.jpg", "master.png")


@dataclass(frozen=True)
class Source:
    sha256: str
    format: str  # jpeg, png, ...
    data: bytes


class Sources:
    def __init__(self, published: StoredCdn, activated: BlobStore | None = None):
        self.published = published
        self.activated = activated

    def __repr__(self) -> str:
        return f"Sources(published={self.published!r}, activated={self.activated!r})"

    def read(self, public_id: str) -> Source:
        """The source image of ``public_id``; ``KeyError`` when there is none to serve,
        however the id fails (unsafe, through a file, over a name limit, missing)."""
        try:
            return self._read(public_id)
        except InvalidKey:
            raise KeyError(public_id) from None

    def _read(self, public_id: str) -> Source:
        if public_id.startswith(UPLOADS) and self.activated is not None:
            name = validate_key(public_id.removeprefix(UPLOADS))
            if "/" in name:
                raise KeyError(public_id)
            for file_name in MASTER_FILES:
                try:
                    data = self.activated.get(activated_upload_file(name, file_name))
                except BlobNotFound:
                    continue
                fmt = "png" if file_name.endswith(".png") else "jpeg"
                return Source(hashlib.sha256(data).hexdigest(), fmt, data)
            raise KeyError(public_id)
        asset, data = self.published.read(public_id)
        return Source(asset.sha256, asset.format, data)
