"""Checks on the vendor chain; blocking where bad data must not reach the website.

The checks are per partition (``partitions_def``), a Dagster feature still
marked preview in 1.13; its warning is silenced here on purpose, once.
"""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    MetadataValue,
    asset_check,
)

from image_assets.catalog.kits_csv import contract_problems, parse_csv
from image_assets.catalog.quality import (
    QUOTA_WARN_PERCENT,
    cdn_urls,
    duplicate_ids,
    image_failure_share,
    quota_trend,
    quota_verdict,
    required_fields,
    scraper_breakage,
)
from image_assets.defs.resources import StorageResource, VendorRegistryResource
from image_assets.defs.vendors.assets import (
    cdn_uploads,
    image_tags,
    kits_csv,
    product_images,
    vendor_products,
)
from image_assets.defs.vendors.partitions import manufacturer_partitions
from image_assets.layout import kits_csv_key
from image_assets.records import ImageRecord, Product, PublishedImage, TagRow
from image_assets.steps.tags import shared_picture_verdict
from image_assets.storage import BlobNotFound

warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

vendor_products_key = AssetKey("vendor_products")


def previous_count(context: AssetCheckExecutionContext, asset_key: AssetKey) -> int | None:
    """``products`` of the last earlier materialization of this partition that had any.

    Empty materializations are skipped: a broken scrape must not become the
    baseline that makes the next broken scrape look normal.
    """
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[context.partition_key]), limit=20
    ).records
    for record in records[1:]:  # records[0] is the materialization being checked
        materialization = record.asset_materialization
        value = materialization.metadata.get("products") if materialization else None
        if value is not None and int(value.value) > 0:
            return int(value.value)
    return None


@asset_check(
    asset=vendor_products,
    blocking=True,
    partitions_def=manufacturer_partitions,
    description="Fails when the product count drops sharply or many products lack a name or "
    "image: the usual sign that a vendor changed its HTML. Blocks the images downstream.",
)
def scraper_not_broken(
    context: AssetCheckExecutionContext,
    registry: VendorRegistryResource,
    vendor_products: list[dict],
) -> AssetCheckResult:
    vendor = registry.load().get(context.partition_key)
    products = [Product.model_validate(p) for p in vendor_products]
    verdict = scraper_breakage(
        products, previous_count(context, vendor_products_key), vendor.checks
    )
    return AssetCheckResult(
        passed=verdict.passed,
        severity=AssetCheckSeverity.ERROR,
        description=verdict.summary,
        metadata={k: v for k, v in verdict.metadata.items() if v is not None},
    )


@asset_check(
    asset=vendor_products,
    blocking=True,
    partitions_def=manufacturer_partitions,
    description="No two products share a product_id.",
)
def unique_product_ids(vendor_products: list[dict]) -> AssetCheckResult:
    verdict = duplicate_ids([Product.model_validate(p) for p in vendor_products])
    return AssetCheckResult(
        passed=verdict.passed, description=verdict.summary, metadata=verdict.metadata
    )


@asset_check(
    asset=cdn_uploads,
    partitions_def=manufacturer_partitions,
    description="Cloudinary plan usage (storage, bandwidth, transformations, credits) read "
    "after the uploads: warns at 80%, fails at 95%.",
)
def cloudinary_quota(context: AssetCheckExecutionContext) -> AssetCheckResult:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey("cdn_uploads"), asset_partitions=[context.partition_key]
        ),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata if records else {}
    percentages = _quota_percentages(metadata)
    level, summary = quota_verdict(percentages)
    # the account's usage over its recent readings, whichever vendor's run made them
    recent = context.instance.fetch_materializations(AssetKey("cdn_uploads"), limit=60).records
    readings = [
        (r.timestamp, _quota_percentages(r.asset_materialization.metadata))
        for r in recent
        if r.asset_materialization is not None
    ]
    trend = quota_trend([(t, p) for t, p in readings if p])
    days = [left for _, left in trend.values() if left is not None]
    if days:
        summary += f"; {min(days):.0f} days until {QUOTA_WARN_PERCENT:.0f}% at the current rate"
    return AssetCheckResult(
        passed=level == "ok",
        severity=AssetCheckSeverity.ERROR if level == "fail" else AssetCheckSeverity.WARN,
        description=summary,
        metadata={
            **{f"{k}_percent": v for k, v in percentages.items()},
            **{f"{k}_percent_per_day": slope for k, (slope, _) in trend.items()},
            **{f"{k}_days_to_80": left for k, (_, left) in trend.items() if left is not None},
            "quota_readings": len([p for _, p in readings if p]),
        },
    )


def _quota_percentages(metadata) -> dict[str, float]:
    return {
        key.removeprefix("quota_").removesuffix("_percent"): float(value.value)
        for key, value in metadata.items()
        if key.startswith("quota_") and key.endswith("_percent") and key != "quota_max_percent"
    }


def _result(verdict, severity: AssetCheckSeverity = AssetCheckSeverity.ERROR) -> AssetCheckResult:
    return AssetCheckResult(
        passed=verdict.passed,
        severity=severity,
        description=verdict.summary,
        metadata={k: v for k, v in verdict.metadata.items() if v is not None},
    )


@asset_check(
    asset=vendor_products,
    blocking=True,
    partitions_def=manufacturer_partitions,
    description="Every product has a safe product_id, this manufacturer and an http(s) URL.",
)
def required_fields_present(
    context: AssetCheckExecutionContext, vendor_products: list[dict]
) -> AssetCheckResult:
    products = [Product.model_validate(p) for p in vendor_products]
    return _result(required_fields(products, context.partition_key))


@asset_check(
    asset=product_images,
    blocking=True,
    partitions_def=manufacturer_partitions,
    description="The share of images that could not be downloaded or were refused stays "
    "under the vendor's limit (default 50%); above it the CSV keeps its last good version.",
)
def image_failures_under_limit(
    context: AssetCheckExecutionContext,
    registry: VendorRegistryResource,
    product_images: list[dict],
) -> AssetCheckResult:
    limit = registry.load().get(context.partition_key).checks.max_image_failure_share
    images = [ImageRecord.model_validate(i) for i in product_images]
    return _result(image_failure_share(images, limit))


@asset_check(
    asset=cdn_uploads,
    blocking=True,
    partitions_def=manufacturer_partitions,
    description="Every published URL is well-formed; local CDN files exist.",
)
def cdn_urls_valid(cdn_uploads: list[dict]) -> AssetCheckResult:
    return _result(cdn_urls([PublishedImage.model_validate(u) for u in cdn_uploads]))


@asset_check(
    asset=kits_csv,
    partitions_def=manufacturer_partitions,
    description="The CSV's columns are exactly the contract's and every images cell is a JSON array.",
)
def kits_csv_contract(
    context: AssetCheckExecutionContext, storage: StorageResource
) -> AssetCheckResult:
    key = kits_csv_key(context.partition_key)
    try:
        data = storage.raw().get(key)
    except BlobNotFound:
        return AssetCheckResult(passed=False, description=f"{key} does not exist")
    problem = contract_problems(data)
    if problem:
        return AssetCheckResult(passed=False, description=f"{key}: {problem}")
    rows = len(parse_csv(data))
    return AssetCheckResult(
        passed=True, description=f"{rows} rows follow the contract", metadata={"rows": rows}
    )


@asset_check(
    asset=image_tags,
    partitions_def=manufacturer_partitions,
    description="Warns when one picture (near-identical by pHash) is shown by more of a "
    "vendor's products than checks.max_products_per_picture: a photo reused for several "
    "kits, or a placeholder or logo the scraper picked up. The metadata lists them.",
)
def pictures_not_shared(
    context: AssetCheckExecutionContext,
    registry: VendorRegistryResource,
    image_tags: list[dict],
) -> AssetCheckResult:
    limits = registry.load().get(context.partition_key).checks
    passed, summary, over = shared_picture_verdict(
        [TagRow.model_validate(r) for r in image_tags],
        limits.max_products_per_picture,
        limits.near_duplicate_bits,
    )
    lines = ["| products | images |", "|---|---|"] + [
        f"| {', '.join(s.products)} | {', '.join(s.images)} |" for s in over[:25]
    ]
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description=summary,
        metadata={
            "shared_pictures": len(over),
            "groups": MetadataValue.md("\n".join(lines)),
        },
    )


checks = [
    pictures_not_shared,
    scraper_not_broken,
    unique_product_ids,
    required_fields_present,
    image_failures_under_limit,
    cdn_urls_valid,
    kits_csv_contract,
    cloudinary_quota,
]
