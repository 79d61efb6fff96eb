"""Publish masters (and, for CDNs that cannot transform, renditions) to a CDN backend.

Layout: folder ``kits/{manufacturer}``, public_id from the product id
(``kits/estes/est0001``), further images ``kits/estes/est0001/2``; renditions
``{public_id}/{name}-{format}``. An upload is skipped when the backend already
holds bytes with the same sha256. One failing image never stops the others.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.catalog.records import ImageRecord, ImageRenditions, ImageUpload
from image_assets.cdn.base import CdnBackend
from image_assets.steps.progress import ProgressReporter, Say
from image_assets.storage import BlobStore

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    uploaded: int = 0
    unchanged: int = 0
    failed: int = 0
    rendition_uploads: int = 0
    bytes_uploaded: int = 0
    duration: float = 0.0
    failures: Counter = field(default_factory=Counter)


def public_id_for(manufacturer: str, product_id: str, position: int) -> str:
    base = f"kits/{manufacturer}/{product_id}"
    return base if position == 1 else f"{base}/{position}"


def publish_images(
    manufacturer: str,
    images: list[ImageRecord],
    renditions: list[ImageRenditions],
    store: BlobStore,
    cdn: CdnBackend,
    *,
    workers: int = 8,
    say: Say = print,
) -> tuple[list[ImageUpload], PublishStats]:
    stats = PublishStats()
    by_image = {(r.product_id, r.position): r for r in renditions}
    progress = ProgressReporter(say, "uploads", len(images))

    def one(image: ImageRecord) -> ImageUpload:
        result = _publish_one(
            manufacturer,
            image,
            by_image.get((image.product_id, image.position)),
            store,
            cdn,
            stats,
            say,
        )
        progress.advance()
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish") as pool:
        uploads = list(pool.map(one, images))
    stats.duration = progress.elapsed
    for upload in uploads:
        if upload.status == "uploaded":
            stats.uploaded += 1
        elif upload.status == "unchanged":
            stats.unchanged += 1
        else:
            stats.failed += 1
            stats.failures[(upload.reason or "unknown").split(":", 1)[0]] += 1
    return uploads, stats


def _publish_one(
    manufacturer: str,
    image: ImageRecord,
    renditions: ImageRenditions | None,
    store: BlobStore,
    cdn: CdnBackend,
    stats: PublishStats,
    say: Say,
) -> ImageUpload:
    base = {"product_id": image.product_id, "position": image.position}
    if image.status != "ok" or not image.master_key or not image.master_sha256:
        return ImageUpload(**base, status="failed", reason=image.reason or "no image")
    public_id = public_id_for(manufacturer, image.product_id, image.position)
    try:
        existing = cdn.lookup(public_id)
        if existing is not None and existing.sha256 == image.master_sha256:
            asset, status = existing, "unchanged"
        else:
            say(f"Uploading image {image.position} for product {image.product_id}")
            data = store.get(image.master_key)
            asset = cdn.upload(
                data,
                public_id,
                format=image.format or "jpeg",
                sha256=image.master_sha256,
                width=image.width,
                height=image.height,
            )
            status = "uploaded"
            stats.bytes_uploaded += len(data)
        urls: dict[str, str] = {}
        if not cdn.transforms_on_delivery and renditions and renditions.status == "ok":
            for rendition in renditions.renditions:
                rid = f"{public_id}/{rendition.name}-{rendition.format}"
                held = cdn.lookup(rid)
                if held is None or held.sha256 != rendition.sha256:
                    held = cdn.upload(
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
        return ImageUpload(**base, status=status, asset=asset, renditions=urls)
    except Exception as exc:  # one image never stops the run; the reason is recorded
        log.warning("upload of %s failed: %s", public_id, exc)
        return ImageUpload(**base, status="failed", reason=f"upload failed: {exc}")
