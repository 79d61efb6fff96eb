"""Publish each image's master (and, for CDNs that cannot transform, its renditions).

Layout: folder ``kits/{manufacturer}``, public_id from the product id
(``kits/estes/est0001``), further images ``kits/estes/est0001/2``; renditions
``{public_id}/{name}-{format}``. An upload is skipped when the backend already
holds bytes with the same sha256. One failing image never stops the others:
its reason is recorded and the product keeps an empty image.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.catalog.records import (
    CdnAsset,
    ImageRecord,
    ImageRenditions,
    ImageUpload,
    RenditionFile,
)
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
    """One :class:`ImageUpload` per image record (failed ones included), in input order."""
    stats = PublishStats()
    made = {(r.product_id, r.position): r for r in renditions}
    progress = ProgressReporter(say, "uploads", len(images))

    def one(image: ImageRecord) -> ImageUpload:
        upload = _publish_one(
            manufacturer,
            image,
            made.get((image.product_id, image.position)),
            store,
            cdn,
            stats,
            say,
        )
        progress.advance()
        return upload

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
            stats.failures[failure_kind(upload.reason or "unknown")] += 1
    return uploads, stats


def _put(
    cdn: CdnBackend,
    store: BlobStore,
    public_id: str,
    file: RenditionFile,
    stats: PublishStats,
    announce: Say | None = None,
) -> tuple[CdnAsset, bool]:
    """Upload ``file`` unless the CDN already holds these bytes; return (asset, uploaded?)."""
    held = cdn.lookup(public_id)
    if held is not None and held.sha256 == file.sha256:
        return held, False
    if announce:
        announce()
    asset = cdn.upload(
        store.get(file.key),
        public_id,
        format=file.format,
        sha256=file.sha256,
        width=file.width,
        height=file.height,
    )
    stats.bytes_uploaded += file.bytes
    return asset, True


def _publish_one(
    manufacturer: str,
    image: ImageRecord,
    made: ImageRenditions | None,
    store: BlobStore,
    cdn: CdnBackend,
    stats: PublishStats,
    say: Say,
) -> ImageUpload:
    base = {"product_id": image.product_id, "position": image.position}
    if image.status != "ok":
        return ImageUpload(**base, status="failed", reason=image.reason or "download failed")
    if made is None or made.status != "ok" or made.master is None:
        reason = made.reason if made is not None and made.reason else "no master image was made"
        return ImageUpload(**base, status="failed", reason=reason)
    public_id = public_id_for(manufacturer, image.product_id, image.position)
    try:
        asset, uploaded = _put(
            cdn,
            store,
            public_id,
            made.master,
            stats,
            announce=lambda: say(
                f"Uploading image {image.position} for product {image.product_id}"
            ),
        )
        urls: dict[str, str] = {}
        if not cdn.transforms_on_delivery:
            for rendition in made.renditions:
                rid = f"{public_id}/{rendition.name}-{rendition.format}"
                held_rendition, sent = _put(cdn, store, rid, rendition, stats)
                stats.rendition_uploads += sent
                urls[f"{rendition.name}.{rendition.format}"] = held_rendition.secure_url
        return ImageUpload(
            **base,
            status="uploaded" if uploaded else "unchanged",
            asset=asset,
            renditions=urls,
            lqip=made.lqip,
            blurhash=made.blurhash,
        )
    except Exception as exc:  # one image never stops the run; the reason is recorded
        log.warning("upload of %s failed: %s", public_id, exc)
        return ImageUpload(**base, status="failed", reason=f"upload failed: {exc}")
