"""Publish each image's master (and, for CDNs that cannot transform, its renditions).

Backends form a fallback chain (Cloudinary, then S3 or local, as in the seed).
Layout: folder ``kits/{manufacturer}``, public_id from the product id
(``kits/estes/est0001``), further images ``kits/estes/est0001/2``; renditions
``{public_id}/{name}-{format}``. An upload is skipped when the backend already
holds bytes with the same sha256. One failing image never stops the others:
its reason is recorded and the product keeps an empty image.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.catalog.records import ImageRecord, ImageRenditions, ImageUpload
from image_assets.cdn.base import CdnBackend
from image_assets.steps.originals import failure_kind
from image_assets.steps.progress import ProgressReporter, Say
from image_assets.storage import BlobStore

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    uploaded: int = 0
    unchanged: int = 0
    failed: int = 0
    fallback: int = 0
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    duration: float = 0.0
    failures: Counter = field(default_factory=Counter)
    by_storage: Counter = field(default_factory=Counter)


def public_id_for(manufacturer: str, product_id: str, position: int) -> str:
    base = f"kits/{manufacturer}/{product_id}"
    return base if position == 1 else f"{base}/{position}"


def publish_images(
    manufacturer: str,
    images: list[ImageRecord],
    renditions: list[ImageRenditions],
    store: BlobStore,
    backends: Sequence[CdnBackend],
    *,
    workers: int = 8,
    say: Say = print,
) -> tuple[list[ImageUpload], PublishStats]:
    """One :class:`ImageUpload` per image record (failed ones included), in input order.

    ``backends`` is the fallback chain (e.g. Cloudinary, then S3): an image is
    ``unchanged`` when any backend already holds its bytes, else it goes to the
    first backend that accepts it; only when all fail is it ``failed``.
    """
    if not backends:
        raise ValueError("publish_images needs at least one CDN backend")
    stats = PublishStats()
    made = {(r.product_id, r.position): r for r in renditions}
    progress = ProgressReporter(say, "uploads", len(images))

    def one(image: ImageRecord) -> ImageUpload:
        found = made.get((image.product_id, image.position))
        upload = _publish_one(manufacturer, image, found, store, backends, stats, say)
        progress.advance()
        return upload

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        uploads = list(pool.map(one, images))
    stats.duration = progress.elapsed
    for upload in uploads:
        if upload.status == "failed":
            stats.failed += 1
            stats.failures[failure_kind(upload.reason or "unknown")] += 1
            continue
        stats.uploaded += upload.status == "uploaded"
        stats.unchanged += upload.status == "unchanged"
        assert upload.asset is not None
        stats.by_storage[upload.asset.storage] += 1
        stats.fallback += upload.asset.storage != backends[0].storage
    return uploads, stats


def _renditions(
    backend: CdnBackend,
    store: BlobStore,
    public_id: str,
    made: ImageRenditions,
    stats: PublishStats,
) -> dict[str, str]:
    """Rendition URLs: transformation URLs on CDNs that transform on delivery, else the
    renditions are published beside the master."""
    urls: dict[str, str] = {}
    if backend.transforms_on_delivery:
        for rendition in made.renditions:
            boxed = rendition.crop in ("fill", "pad")
            urls[f"{rendition.name}.{rendition.format}"] = backend.delivery_url(
                public_id,
                width=rendition.width,
                height=rendition.height if boxed else None,
                crop=rendition.crop,
                format="jpg" if rendition.format == "jpeg" else rendition.format,
                quality="auto",
            )
        return urls
    for rendition in made.renditions:
        rid = f"{public_id}/{rendition.name}-{rendition.format}"
        held = backend.lookup(rid, rendition.format)
        if held is None or held.sha256 != rendition.sha256:
            held = backend.upload(
                store.get(rendition.key),
                rid,
                format=rendition.format,
                sha256=rendition.sha256,
                width=rendition.width,
                height=rendition.height,
            )
            stats.rendition_uploads += 1
            stats.bytes_uploaded += rendition.bytes
        urls[f"{rendition.name}.{rendition.format}"] = held.secure_url
    return urls


def _publish_one(
    manufacturer: str,
    image: ImageRecord,
    made: ImageRenditions | None,
    store: BlobStore,
    backends: Sequence[CdnBackend],
    stats: PublishStats,
    say: Say,
) -> ImageUpload:
    base = {"product_id": image.product_id, "position": image.position}
    if image.status != "ok":
        return ImageUpload(**base, status="failed", reason=image.reason or "download failed")
    if made is None or made.status != "ok" or made.master is None:
        reason = made.reason if made is not None and made.reason else "no master image was made"
        return ImageUpload(**base, status="failed", reason=reason)
    master = made.master
    public_id = public_id_for(manufacturer, image.product_id, image.position)
    extras = {"lqip": made.lqip, "blurhash": made.blurhash}
    errors: list[str] = []
    for backend in backends:  # already there, with these bytes?
        try:
            held = backend.lookup(public_id, master.format)
            if held is not None and held.sha256 == master.sha256:
                urls = _renditions(backend, store, public_id, made, stats)
                return ImageUpload(
                    **base, status="unchanged", asset=held, renditions=urls, **extras
                )
        except Exception as exc:
            errors.append(f"{backend.storage} lookup: {exc}")
    for backend in backends:
        try:
            say(
                f"Uploading image {image.position} for product {image.product_id} to {backend.storage}"
            )
            asset = backend.upload(
                store.get(master.key),
                public_id,
                format=master.format,
                sha256=master.sha256,
                width=master.width,
                height=master.height,
            )
            stats.bytes_uploaded += master.bytes
            urls = _renditions(backend, store, public_id, made, stats)
            return ImageUpload(**base, status="uploaded", asset=asset, renditions=urls, **extras)
        except Exception as exc:  # the next backend gets its chance; the reason is kept
            log.warning("upload of %s to %s failed: %s", public_id, backend.storage, exc)
            errors.append(f"{backend.storage}: {exc}")
    return ImageUpload(**base, status="failed", reason="upload failed: " + "; ".join(errors))
