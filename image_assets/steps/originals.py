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

from image_assets.failures import FailureKind
from image_assets.imaging.decode import (
    DecodeLimits,
    ImageRefused,
    check_complete,
    oriented_size,
    probe,
)
from image_assets.layout import original_key
from image_assets.progress import ProgressReporter, Say
from image_assets.records import ImageRecord, Product
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.http import FetchError, HttpClient
from image_assets.storage import BlobStore

_FACTS = ("original_key", "original_sha256", "original_bytes", "format", "width", "height")


@dataclass(frozen=True)
class FetchOutcome:
    """One image's record plus what fetching it cost (for the run's counts)."""

    record: ImageRecord
    not_modified: bool = False
    new_original: bool = False
    bytes_downloaded: int = 0


@dataclass
class OriginalsStats:
    downloaded: int = 0
    not_modified: int = 0
    new_originals: int = 0
    failed: int = 0
    bytes_downloaded: int = 0
    failures: Counter = field(default_factory=Counter)

    @classmethod
    def of(cls, outcomes: list[FetchOutcome]) -> OriginalsStats:
        """Counts over the returned outcomes (never from counters threads share)."""
        records = [o.record for o in outcomes]
        return cls(
            downloaded=sum(r.downloaded for r in records),
            not_modified=sum(o.not_modified for o in outcomes),
            new_originals=sum(o.new_original for o in outcomes),
            failed=sum(r.status == "failed" for r in records),
            bytes_downloaded=sum(o.bytes_downloaded for o in outcomes),
            failures=failure_counts(records),
        )


def failure_counts(records: list) -> Counter:
    """Failed records grouped by their :class:`FailureKind` (the metadata's table)."""
    return Counter(str(r.failure or FailureKind.INTERNAL) for r in records if r.status == "failed")


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
    """One :class:`ImageRecord` per (product, image URL), in product then position order.

    Each distinct URL is fetched once however many products show it (a shared
    accessory photo, a kit and its bundle); every product still gets its record.
    """
    jobs = [(p.product_id, pos, url) for p in products for pos, url in enumerate(p.image_urls, 1)]
    distinct = list(dict.fromkeys(url for _pid, _pos, url in jobs))
    progress = ProgressReporter(say, "images", len(distinct))

    def one(url: str) -> FetchOutcome:
        try:
            outcome = _fetch_one("", 0, url, client, store, cache, limits)
        except Exception as exc:  # a bug or an odd file must not cost the other images
            outcome = FetchOutcome(
                ImageRecord(
                    product_id="",
                    position=0,
                    source_url=url,
                    status="failed",
                    reason=f"internal error: {type(exc).__name__}: {exc}",
                    failure=FailureKind.INTERNAL,
                )
            )
        progress.advance()
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="originals") as pool:
        by_url = dict(zip(distinct, pool.map(one, distinct), strict=True))
    cache.save()
    outcomes = []
    counted: set[str] = set()
    for product_id, position, url in jobs:
        fetched = by_url[url]
        record = fetched.record.model_copy(update={"product_id": product_id, "position": position})
        if url in counted:  # the same fetch serves this product too: count its cost once
            fetched = FetchOutcome(record.model_copy(update={"downloaded": False}))
        else:
            fetched = FetchOutcome(
                record, fetched.not_modified, fetched.new_original, fetched.bytes_downloaded
            )
        counted.add(url)
        outcomes.append(fetched)
    return [o.record for o in outcomes], OriginalsStats.of(outcomes)


def _fetch_one(
    product_id: str,
    position: int,
    url: str,
    client: HttpClient,
    store: BlobStore,
    cache: ValidatorCache,
    limits: DecodeLimits,
) -> FetchOutcome:
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
        return FetchOutcome(
            ImageRecord(**base, status="failed", reason=exc.reason, failure=exc.kind)
        )
    if result.not_modified and usable:
        if refused_before:  # the same bytes as last time: refused again without reading them
            refused = ImageRecord(
                **base,
                status="failed",
                reason=refused_before,
                failure=usable.get("refused_kind") or FailureKind.CORRUPT,
            )
            return FetchOutcome(refused, not_modified=True)
        ok = ImageRecord(**base, status="ok", **{k: usable.get(k) for k in _FACTS})
        return FetchOutcome(ok, not_modified=True)
    data = result.content
    sha = hashlib.sha256(data).hexdigest()
    validators = {"etag": result.validators.etag, "last_modified": result.validators.last_modified}
    try:
        info = probe(data, limits)
        check_complete(data, info)
    except ImageRefused as exc:
        cache.put(url, **validators, original_sha256=sha, refused=exc.reason, refused_kind=exc.kind)
        refused = ImageRecord(
            **base, status="failed", reason=exc.reason, failure=exc.kind, downloaded=True
        )
        return FetchOutcome(refused, bytes_downloaded=len(data))
    key = original_key(sha)
    new_original = not store.exists(key)
    if new_original:
        store.put(key, data)
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
    record = ImageRecord(**base, status="ok", downloaded=True, **facts)
    return FetchOutcome(record, new_original=new_original, bytes_downloaded=len(data))
