"""Download product images and keep the originals, checked from their headers.

Originals are kept privately by content hash (``originals/``). Nothing is
decoded here: the header gives the format (by content), the size and the EXIF
orientation, limits refuse decompression bombs, and a structural check refuses
truncated downloads. Pixels are decoded once, by the renditions step. A re-run
sends conditional GETs and reuses everything for unchanged images.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.catalog.records import ImageRecord, Product
from image_assets.imaging.decode import (
    DecodeLimits,
    ImageRefused,
    check_complete,
    oriented_size,
    probe,
)
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.http import FetchError, HttpClient
from image_assets.steps.progress import ProgressReporter, Say
from image_assets.storage import BlobStore

_FACTS = ("original_key", "original_sha256", "original_bytes", "format", "width", "height")


@dataclass
class OriginalsStats:
    downloaded: int = 0
    not_modified: int = 0
    new_originals: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    failures: Counter = field(default_factory=Counter)


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}"


def failure_kind(reason: str) -> str:
    """Group reasons for the failure table: ``HTTP 404``, ``corrupt or truncated image``..."""
    return reason.split(":", 1)[0].split(" after ", 1)[0]


def fetch_originals(
    products: list[Product],
    client: HttpClient,
    store: BlobStore,
    cache: ValidatorCache,
    *,
    limits: DecodeLimits = DecodeLimits(),
    workers: int = 4,
    say: Say = print,
) -> tuple[list[ImageRecord], OriginalsStats]:
    """One :class:`ImageRecord` per (product, image URL), in product then position order."""
    stats = OriginalsStats()
    jobs = [(p.product_id, pos, url) for p in products for pos, url in enumerate(p.image_urls, 1)]
    progress = ProgressReporter(say, "images", len(jobs))

    def one(job: tuple[str, int, str]) -> ImageRecord:
        product_id, position, url = job
        try:
            record = _fetch_one(product_id, position, url, client, store, cache, limits, stats)
        except Exception as exc:  # a bug or an odd file must not cost the other images
            reason = f"internal error: {type(exc).__name__}: {exc}"
            record = ImageRecord(
                product_id=product_id,
                position=position,
                source_url=url,
                status="failed",
                reason=reason,
            )
        progress.advance()
        return record

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="originals") as pool:
        records = list(pool.map(one, jobs))
    cache.save()
    for record in records:
        if record.status == "failed":
            stats.failed += 1
            stats.failures[failure_kind(record.reason or "unknown")] += 1
    return records, stats


def _fetch_one(
    product_id: str,
    position: int,
    url: str,
    client: HttpClient,
    store: BlobStore,
    cache: ValidatorCache,
    limits: DecodeLimits,
    stats: OriginalsStats,
) -> ImageRecord:
    base = {"product_id": product_id, "position": position, "source_url": url}
    cached = cache.get(url)
    refused_before = cached.get("refused") if cached else None
    usable = (
        cached
        if cached and (refused_before or store.exists(cached.get("original_key") or ""))
        else None
    )
    try:
        result = client.fetch(
            url, cache.validators(url) if usable else None, max_bytes=limits.max_bytes
        )
    except FetchError as exc:
        return ImageRecord(**base, status="failed", reason=exc.reason)
    if result.not_modified and usable:
        stats.not_modified += 1
        if refused_before:  # the same bytes as last time: refused again without reading them
            return ImageRecord(**base, status="failed", reason=refused_before)
        return ImageRecord(**base, status="ok", **{k: usable.get(k) for k in _FACTS})
    data = result.content
    stats.downloaded += 1
    stats.bytes_downloaded += len(data)
    sha = hashlib.sha256(data).hexdigest()
    validators = {"etag": result.validators.etag, "last_modified": result.validators.last_modified}
    try:
        info = probe(data, limits)
        check_complete(data, info)
    except ImageRefused as exc:
        cache.put(url, **validators, original_sha256=sha, refused=exc.reason)
        return ImageRecord(**base, status="failed", reason=exc.reason, downloaded=True)
    key = original_key(sha)
    if not store.exists(key):
        store.put(key, data)
        stats.new_originals += 1
    width, height = oriented_size(info)
    facts = {
        "original_key": key,
        "original_sha256": sha,
        "original_bytes": len(data),
        "format": info.format.lower(),
        "width": width,
        "height": height,
    }
    cache.put(url, **validators, **facts)
    return ImageRecord(**base, status="ok", downloaded=True, **facts)
