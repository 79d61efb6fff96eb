"""The `self` CDN backend: masters kept in the platform's own store, delivered by
``image-assets serve`` with Cloudinary's URL grammar.

Uploads store the master under its public id (``{public_id}.{ext}`` plus a
record, as the local CDN does, in a folder or a bucket). Delivery URLs are built
by the official Cloudinary SDK with the service as its host
(``private_cdn`` + ``cname``/``secure_distribution``), so the kits CSV's
``renditions`` are the same transformation URLs Cloudinary would get, and are
signed with the service's secret when one is configured (the SDK's algorithm).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from image_assets.cdn.local import StoredCdn
from image_assets.formats import image_format
from image_assets.layout import sanitize_id
from image_assets.storage import BlobStore


class SelfCdn(StoredCdn):
    storage = "self"
    transforms_on_delivery = True

    def __init__(
        self,
        store: BlobStore,
        base_url: str,
        *,
        secret: str | None = None,
        signature_algorithm: Literal["sha1", "sha256"] = "sha1",
    ):
        super().__init__(store)
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ValueError(
                f"the service's base URL must be http(s)://host[:port], not {base_url!r}"
            )
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self._secure = parts.scheme == "https"
        self._host = parts.netloc
        self._secret = secret
        self.signature_algorithm = signature_algorithm

    def __repr__(self) -> str:
        return f"SelfCdn(base_url={self.base_url!r}, signed={self._secret is not None})"

    @property
    def ledger_name(self) -> str:
        return f"self/{sanitize_id(self._host)}"

    def _url_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "cloud_name": "self",  # required by the SDK; private_cdn keeps it out of the path
            "private_cdn": True,
            "secure": self._secure,
        }
        if self._secure:
            options["secure_distribution"] = self._host
        else:
            options["cname"] = self._host
        if self._secret:
            options |= {
                "sign_url": True,
                "api_secret": self._secret,
                "signature_algorithm": self.signature_algorithm,
            }
        return options

    def asset_url(self, public_id: str, fmt: str, version: int | None) -> str:
        import cloudinary.utils  # here: the image service's workers only read masters (11 MB)

        url, _ = cloudinary.utils.cloudinary_url(
            public_id,
            format=image_format(fmt).cloudinary_name,
            version=version,
            **{k: v for k, v in self._url_options().items() if k != "sign_url"},
        )
        return url

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
        """A transformation URL built by the SDK, signed when the service has a secret."""
        import cloudinary.utils

        from image_assets.cdn.cloudinary import transformation_options

        options = transformation_options(
            width=width, height=height, crop=crop, format=format, quality=quality
        )
        if version is None:  # one record read, only when the caller did not know it
            asset = self.lookup(public_id)
            version = asset.version if asset is not None else None
        if version:
            options["version"] = version
        url, _ = cloudinary.utils.cloudinary_url(public_id, **options, **self._url_options())
        return url
