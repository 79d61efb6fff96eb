"""Data-quality rules over catalog records: the logic behind the asset checks.

Pure functions returning findings, so they are unit-tested without Dagster
and the checks stay one line of glue each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from image_assets.layout import sanitize_id
from image_assets.records import ImageRecord, Product, PublishedImage


class CheckThresholds(BaseModel):
    """When the checks fail for a vendor (the registry's ``checks:`` overrides them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_count_drop: float = Field(default=0.5, ge=0, le=1)
    max_missing_name_share: float = Field(default=0.1, ge=0, le=1)
    max_missing_image_share: float = Field(default=0.5, ge=0, le=1)
    max_image_failure_share: float = Field(default=0.5, ge=0, le=1)
    # a picture (within near_duplicate_bits of pHash) shown by more products than this
    # is reported: a reused photo, or a placeholder or logo the scraper picked up
    max_products_per_picture: int = Field(default=1, ge=1)
    near_duplicate_bits: int = Field(default=4, ge=0, le=20)


@dataclass
class Verdict:
    passed: bool
    summary: str
    metadata: dict = field(default_factory=dict)


def scraper_breakage(
    products: list[Product], previous_count: int | None, thresholds: CheckThresholds
) -> Verdict:
    """Catch the usual symptoms of a vendor changing its HTML.

    Fails when the product count dropped by more than ``max_count_drop``
    against the previous materialization, or when too many products lack a
    name or an image.
    """
    count = len(products)
    no_name = sum(1 for p in products if not p.name)
    no_image = sum(1 for p in products if not p.image_urls)
    problems = []
    drop = None
    if previous_count:
        drop = max(0.0, 1 - count / previous_count)
        if drop > thresholds.max_count_drop:
            problems.append(
                f"product count dropped {drop:.0%} ({previous_count} -> {count}); "
                f"limit {thresholds.max_count_drop:.0%}"
            )
    if count == 0:
        problems.append("no products at all")
    else:
        if no_name / count > thresholds.max_missing_name_share:
            problems.append(f"{no_name}/{count} products have no name")
        if no_image / count > thresholds.max_missing_image_share:
            problems.append(f"{no_image}/{count} products have no image")
    # Shares and ratios, not counts: the UI plots a check's numbers as one line across
    # every vendor's partition, and 0.98 means the same thing for a vendor of 9 products
    # as for one of 900 (the counts are in the summary).
    metadata = {
        "count_vs_previous": round(count / previous_count, 3) if previous_count else None,
        "share_without_name": round(no_name / count, 3) if count else None,
        "share_without_image": round(no_image / count, 3) if count else None,
    }
    was = f" (previously {previous_count})" if previous_count else ""
    summary = "; ".join(problems) or f"{count} products{was} look healthy"
    return Verdict(not problems, summary, metadata)


def duplicate_ids(products: list[Product]) -> Verdict:
    counts = Counter(p.product_id for p in products)
    dupes = sorted(k for k, n in counts.items() if n > 1)
    return Verdict(
        not dupes,
        f"duplicate product_id: {', '.join(dupes[:10])}" if dupes else "product ids are unique",
        {"duplicates": len(dupes)},
    )


QUOTA_WARN_PERCENT = 80.0
QUOTA_FAIL_PERCENT = 95.0


def quota_verdict(percentages: dict[str, float]) -> tuple[str, str]:
    """(``ok``|``warn``|``fail``, summary) for the Cloudinary plan usage percentages."""
    if not percentages:
        return "ok", "no Cloudinary usage reported (Cloudinary not in use)"
    worst_key = max(percentages, key=lambda k: percentages[k])
    worst = percentages[worst_key]
    summary = ", ".join(f"{k} {v:.1f}%" for k, v in sorted(percentages.items()))
    if worst >= QUOTA_FAIL_PERCENT:
        return (
            "fail",
            f"{worst_key} at {worst:.1f}% of the plan (fails at {QUOTA_FAIL_PERCENT:.0f}%): {summary}",
        )
    if worst >= QUOTA_WARN_PERCENT:
        return (
            "warn",
            f"{worst_key} at {worst:.1f}% of the plan (warns at {QUOTA_WARN_PERCENT:.0f}%): {summary}",
        )
    return "ok", summary


def quota_trend(
    readings: list[tuple[float, dict[str, float]]], target: float = QUOTA_WARN_PERCENT
) -> dict[str, tuple[float, float | None]]:
    """``{usage: (percent points per day, days until target)}`` from timed readings
    (``(unix time, {usage: percent})``), by a least-squares line through each usage's
    readings; days is None when the usage is flat or falling, 0 when already there.
    Needs two readings at least a minute apart; usages with fewer are left out."""
    out: dict[str, tuple[float, float | None]] = {}
    for key in sorted({k for _, values in readings for k in values}):
        points = sorted((t, values[key]) for t, values in readings if key in values)
        if len(points) < 2 or points[-1][0] - points[0][0] < 60:
            continue
        days = [(t - points[0][0]) / 86400 for t, _ in points]
        level = [v for _, v in points]
        mean_d, mean_v = sum(days) / len(days), sum(level) / len(level)
        spread = sum((d - mean_d) ** 2 for d in days)
        slope = sum((d - mean_d) * (v - mean_v) for d, v in zip(days, level, strict=True)) / spread
        now = level[-1]
        if now >= target:
            left: float | None = 0.0
        elif slope > 1e-9:
            left = round((target - now) / slope, 1)
        else:
            left = None
        out[key] = (round(slope, 3), left)
    return out


def required_fields(products: list[Product], manufacturer: str) -> Verdict:
    """Every product has a safe id, this manufacturer, and an http(s) product URL or none."""
    bad: list[str] = []
    for p in products:
        if not p.product_id or sanitize_id(p.product_id) != p.product_id:
            bad.append(f"{p.product_id!r}: unsafe product_id")
        elif p.manufacturer != manufacturer:
            bad.append(f"{p.product_id}: manufacturer {p.manufacturer!r}")
        elif p.url and urlsplit(p.url).scheme not in ("http", "https"):
            bad.append(f"{p.product_id}: url {p.url!r}")
    return Verdict(
        not bad, "; ".join(bad[:10]) or "required fields present", {"bad_products": len(bad)}
    )


def image_failure_share(images: list[ImageRecord], max_share: float) -> Verdict:
    failed = sum(1 for i in images if i.status == "failed")
    share = failed / len(images) if images else 0.0
    passed = share <= max_share
    summary = f"{failed}/{len(images)} images failed ({share:.0%}; limit {max_share:.0%})"
    return Verdict(
        passed, summary, {"images": len(images), "failed": failed, "failed_share": round(share, 3)}
    )


def cdn_urls(
    published: list[PublishedImage], file_exists: Callable[[str], bool] | None = None
) -> Verdict:
    """Every published URL is well-formed; for ``file://`` URLs (the local CDN) the file exists."""
    exists = file_exists or (lambda path: Path(path).is_file())
    bad: list[str] = []
    for image in published:
        if image.asset is None:
            continue
        for url in [image.asset.url, image.asset.secure_url, *image.renditions.values()]:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                continue
            if parts.scheme == "file" and parts.path:
                if exists(unquote(parts.path)):
                    continue
                bad.append(f"{image.product_id}: missing file {url}")
                continue
            bad.append(f"{image.product_id}: malformed URL {url!r}")
    checked = sum(1 for i in published if i.asset is not None)
    return Verdict(
        not bad,
        "; ".join(bad[:10]) or f"{checked} published images have valid URLs",
        {"bad_urls": len(bad)},
    )
