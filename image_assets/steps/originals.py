"""Download product images and keep validated, normalized masters.

Originals are kept privately by content hash (``originals/``); the normalized
master (EXIF-oriented, sRGB, metadata stripped) is what renditions and CDN
uploads start from (``masters/``). A re-run sends conditional GETs and reuses
everything for unchanged images: no download, no decode, no encode.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from image_assets.catalog.records import ImageRecord, Product
from image_assets.imaging.decode import DecodeLimits, ImageRefused
from image_assets.imaging.pipeline import make_master
from image_assets.imaging.renditions import EXTENSIONS
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.http import FetchError, HttpClient
from image_assets.steps.progress import ProgressReporter, Say
from image_assets.storage import BlobStore


@dataclass
class OriginalsStats:
    downloaded: int = 0
    not_modified: int = 0
    reused: int = 0
    normalized: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    failures: Counter = field(default_factory=Counter)


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}"


def master_key(sha256: str, fmt: str) -> str:
    return f"masters/{sha256[:2]}/{sha256}.{EXTENSIONS[fmt]}"


def _failure_kind(reason: str) -> str:
    """Group reasons for the failure table: ``HTTP 404``, ``corrupt or truncated image``..."""
    return reason.split(":", 1)[0].split(" after ", 1)[0]


def fetch_originals(
    products: list[Product],
    client: HttpClient,
    store: BlobStore,
    cache: ValidatorCache,
    *,
    master_quality: int = 90,
    limits: DecodeLimits = DecodeLimits(),
    workers: int = 4,
    say: Say = print,
) -> tuple[list[ImageRecord], OriginalsStats]:
    """One :class:`ImageRecord` per (product, image URL), in product then position order."""
    stats = OriginalsStats()
    jobs = [(p.product_id, pos, url) for p in products for pos, url in enumerate(p.image_urls, 1)]
    progress = ProgressReporter(say, "images", len(jobs))

    def one(job: tuple[str, int, str]) -> ImageRecord:
        try:
            record = _fetch_one(*job, client, store, cache, master_quality, limits, stats)
        except Exception as exc:  # a bug or an odd file must not cost the other images
            product_id, position, url = job
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
            stats.failures[_failure_kind(record.reason or "unknown")] += 1
    return records, stats


def _fetch_one(
    product_id: str,
    position: int,
    url: str,
    client: HttpClient,
    store: BlobStore,
    cache: ValidatorCache,
    quality: int,
    limits: DecodeLimits,
    stats: OriginalsStats,
) -> ImageRecord:
    base = {"product_id": product_id, "position": position, "source_url": url}
    cached = cache.get(url)
    refused_before = cached.get("refused") if cached else None
    usable = (
        cached
        if cached and (refused_before or store.exists(cached.get("master_key", "")))
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
        if refused_before:  # same bytes as last time: refused again without decoding
            return ImageRecord(**base, status="failed", reason=refused_before)
        return _record_from_cache(base, usable, downloaded=False)
    data = result.content
    stats.downloaded += 1
    stats.bytes_downloaded += len(data)
    sha = hashlib.sha256(data).hexdigest()
    entry_base = {"etag": result.validators.etag, "last_modified": result.validators.last_modified}
    if usable and not refused_before and usable.get("original_sha256") == sha:
        stats.reused += 1
        cache.put(url, **{**usable, **entry_base})
        return _record_from_cache(base, usable, downloaded=True)
    try:
        master = make_master(data, quality, limits)
    except ImageRefused as exc:
        cache.put(url, **entry_base, original_sha256=sha, refused=exc.reason)
        return ImageRecord(**base, status="failed", reason=exc.reason, downloaded=True)
    stats.normalized += 1
    if not store.exists(original_key(sha)):
        store.put(original_key(sha), data)
    mkey = master_key(master.sha256, master.format)
    if not store.exists(mkey):
        store.put(mkey, master.data)
    entry = {
        **entry_base,
        "original_sha256": sha,
        "original_bytes": len(data),
        "original_format": master.original_format,
        "master_key": mkey,
        "master_sha256": master.sha256,
        "width": master.width,
        "height": master.height,
        "format": master.format,
        "bytes": len(master.data),
    }
    cache.put(url, **entry)
    return _record_from_cache(base, entry, downloaded=True)


def _record_from_cache(base: dict, entry: dict, downloaded: bool) -> ImageRecord:
    fields = (
        "original_sha256",
        "original_bytes",
        "original_format",
        "master_key",
        "master_sha256",
        "width",
        "height",
        "format",
        "bytes",
    )
    return ImageRecord(
        **base, status="ok", downloaded=downloaded, **{k: entry.get(k) for k in fields}
    )
