"""The records every part of the platform shares; the one place their fields are defined.

They cross every boundary: assets store lists of them as JSON (``defs/io.py``),
worker processes return them, the kits CSV and the audit table are built from
them. Plain pydantic models with JSON-friendly fields.

Vocabulary: a *published image* is an image put on a CDN (the ``cdn_uploads``
asset); an *upload* is a file a user dropped into the incoming location.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from image_assets.failures import FailureKind


class PageRecord(BaseModel):
    """One fetched catalog page, its raw bytes kept in the blob store at ``key``."""

    url: str
    role: Literal["listing", "product", "api"]
    final_url: str | None = None  # the URL that answered, after redirects (base of its links)
    key: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    status: Literal["fetched", "not_modified", "failed", "refused"]
    reason: str | None = None
    failure: FailureKind | None = None
    http_status: int | None = None
    bytes_fetched: int = 0  # bytes transferred by this fetch (0 when not modified)


class Variant(BaseModel):
    sku: str | None = None
    title: str | None = None
    price: float | None = None
    available: bool | None = None


class Product(BaseModel):
    """A parsed product, as the vendor's catalog describes it."""

    product_id: str
    name: str | None = None
    manufacturer: str
    url: str | None = None
    sku: str | None = None
    image_urls: list[str] = Field(default_factory=list)
    price: float | None = None
    currency: str | None = None
    availability: str | None = None
    variants: list[Variant] = Field(default_factory=list)


class ImageRecord(BaseModel):
    """A downloaded product image: kept privately by content hash, checked from its header.

    ``status`` is ``ok`` or ``failed``; a failed image keeps its ``reason`` and
    ``failure`` kind, and the product still flows downstream with an empty
    image. Pixels are decoded once, later, by the renditions step.
    """

    product_id: str
    position: int
    source_url: str
    status: Literal["ok", "failed"]
    reason: str | None = None
    failure: FailureKind | None = None
    downloaded: bool = False
    original_key: str | None = None
    original_sha256: str | None = None
    original_bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None


class RenditionFile(BaseModel):
    """One encoded output (a rendition or the CDN master) in the image store."""

    name: str
    format: str
    width: int
    height: int
    bytes: int
    key: str
    sha256: str
    crop: str = "limit"


class ImageRenditions(BaseModel):
    """Everything made from one original: the CDN master, renditions, placeholders."""

    product_id: str
    position: int
    original_sha256: str
    status: Literal["ok", "failed"] = "ok"
    reason: str | None = None
    failure: FailureKind | None = None
    encoded: bool = False
    master: RenditionFile | None = None
    renditions: list[RenditionFile] = Field(default_factory=list)
    lqip: str | None = None
    blurhash: str | None = None

    def files(self) -> list[RenditionFile]:
        """The master (if any) and every rendition."""
        return [self.master, *self.renditions] if self.master else list(self.renditions)


class CdnAsset(BaseModel):
    """What a CDN backend holds for one public_id; the one CDN result type."""

    public_id: str
    storage: Literal["cloudinary", "s3", "local", "self"]
    url: str
    secure_url: str
    version: int | None = None
    bytes: int
    width: int | None = None
    height: int | None = None
    format: str
    sha256: str
    etag: str | None = None
    s3_url: str | None = None
    # in a CDN ledger: the day housekeeping first found no current kits CSV naming it
    # (cdn/retention.py); None while it is live
    retired_on: date | None = None


class PublishedImage(BaseModel):
    """The outcome of publishing one product image (and its renditions) to the CDN."""

    product_id: str
    position: int
    status: Literal["uploaded", "unchanged", "failed"]
    reason: str | None = None
    failure: FailureKind | None = None
    asset: CdnAsset | None = None
    renditions: dict[str, str] = Field(default_factory=dict)
    lqip: str | None = None
    blurhash: str | None = None
    # the same bytes were on the CDN already under this other public id: the image
    # points at that asset instead of being uploaded again (CDN storage and quota)
    shared_with: str | None = None


class UploadRecord(BaseModel):
    """A user's uploaded file: waiting (claimed, not yet examined), accepted (with its
    facts) or rejected (why). ``upload_id`` is its key everywhere; ``object_key`` and
    ``original_name`` are the names it arrived with, printable and bounded."""

    upload_id: str
    object_key: str
    original_name: str
    status: Literal["waiting", "accepted", "rejected"]
    reason: str | None = None
    failure: FailureKind | None = None
    unique_name: str | None = None
    original_key: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    received_at: float | None = None
    processed_at: float | None = None


class AuditRow(BaseModel):
    """One row of the ``image_metadata`` table: a processed image, vendor or upload.

    The table's columns are these fields, in this order.
    """

    key: str
    source: Literal["vendor", "upload"]
    manufacturer: str | None = None
    original_name: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    renditions: int = 0
    status: Literal["waiting", "processed", "failed", "rejected", "activated", "expired", "deleted"]
    reason: str | None = None
    failure: FailureKind | None = None
    received_at: float | None = None
    processed_at: float | None = None
    activated_at: float | None = None
    deleted_at: float | None = None  # erased on request: every file gone, this row kept


class ImageLabel(BaseModel):
    name: str
    confidence: float  # percent


class TagRow(BaseModel):
    """One row of the ``image_tags`` table: what one image looks like (hashes, colours)
    and, when a tagger is on, what is in it. A bad image still has its row, with the
    reason; a tagger that is off or down leaves ``labels`` empty and says why."""

    key: str  # {manufacturer}/{product_id}/{position}, as image_metadata
    source: Literal["vendor", "upload"] = "vendor"
    manufacturer: str | None = None
    product_id: str | None = None
    position: int | None = None
    status: Literal["ok", "failed"]
    reason: str | None = None
    phash: str | None = None
    dhash: str | None = None
    average_colour: str | None = None
    dominant_colours: list[tuple[str, float]] = Field(default_factory=list)
    labels: list[ImageLabel] = Field(default_factory=list)
    labels_status: Literal["ok", "off", "missing"] = "off"
    labels_reason: str | None = None
    # what the row was computed from, so a re-run with the same bytes reuses it instead of
    # decoding again (and, for labels, asking the tagger, which may be billed, again)
    source_sha256: str | None = None
    labels_by: str | None = None  # the tagger's name, when labels_status is "ok"
