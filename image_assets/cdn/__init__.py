"""CDN backends behind one interface and one result type (:class:`CdnAsset`)."""

from image_assets.cdn.base import CdnBackend, CdnError
from image_assets.cdn.local import LocalCdn

__all__ = ["CdnBackend", "CdnError", "LocalCdn"]
