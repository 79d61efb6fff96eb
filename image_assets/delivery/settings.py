"""What the image service is configured with (``server.settings_from_env`` fills it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from image_assets.cdn.local import StoredCdn
from image_assets.delivery.cache import DiskCache
from image_assets.delivery.catalog_view import CatalogReader
from image_assets.delivery.direct_upload import GRANT_SECONDS, IDLE_SECONDS, MAX_BYTES
from image_assets.delivery.grammar import DEFAULT_LIMITS, Component, Limits
from image_assets.imaging.config import RenditionSpec
from image_assets.imaging.decode import DecodeLimits
from image_assets.imaging.encoding import DEFAULT_WEBP_EFFORT
from image_assets.storage import BlobStore


@dataclass(frozen=True)
class DirectUploadSettings:
    """Direct uploads: clients authenticate with ``token``; ``key`` signs PUT grants and
    never leaves the server. Exactly one of ``incoming_dir`` (local) and ``s3``
    (client, bucket, incoming prefix) says where files go."""

    token: str
    key: bytes
    base_url: str
    incoming_dir: Path | None = None
    s3: tuple[Any, str, str] | None = None
    max_bytes: int = MAX_BYTES
    seconds: int = GRANT_SECONDS
    idle_seconds: float = IDLE_SECONDS

    def __repr__(self) -> str:
        return f"DirectUploadSettings(incoming_dir={self.incoming_dir}, s3={bool(self.s3)})"


@dataclass(frozen=True)
class DeliverySettings:
    source: StoredCdn
    activated: BlobStore | None = None  # the public area of activated uploads
    secret: str | None = None
    signature_algorithm: Literal["sha1", "sha256"] = "sha1"
    strict: bool = False
    named: Mapping[str, Component] = field(default_factory=dict)
    limits: Limits = DEFAULT_LIMITS
    decode_limits: DecodeLimits = field(default_factory=DecodeLimits)
    max_concurrent_renders: int = 4
    max_waiting_renders: int = 64  # beyond the renders running: 503 with Retry-After
    webp_effort: int = DEFAULT_WEBP_EFFORT
    cache: DiskCache | None = None
    uploads: DirectUploadSettings | None = None
    catalog: CatalogReader | None = None  # the gallery's data (clean_kits, image_metadata)
    # erasure of uploads (DELETE /uploads/{id}): the lifecycle's stores, made when first
    # needed, and the token it takes (the admin token when set, else the upload token)
    upload_stores: Callable[[], Any] | None = None
    admin_token: str | None = None
    rendition_specs: tuple[RenditionSpec, ...] = ()  # the gallery's srcset candidates

    def __repr__(self) -> str:  # the secret stays out of every repr and log
        return f"DeliverySettings(source={self.source!r}, strict={self.strict})"
