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
    asset_check,
)

from image_assets.catalog.quality import duplicate_ids, quota_verdict, scraper_breakage
from image_assets.catalog.records import Product
from image_assets.defs.partitions import manufacturer_partitions
from image_assets.defs.resources import VendorRegistryResource
from image_assets.defs.vendors.assets import cdn_uploads, vendor_products

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
    percentages = {
        key.removeprefix("quota_").removesuffix("_percent"): float(value.value)
        for key, value in metadata.items()
        if key.startswith("quota_") and key.endswith("_percent") and key != "quota_max_percent"
    }
    level, summary = quota_verdict(percentages)
    return AssetCheckResult(
        passed=level == "ok",
        severity=AssetCheckSeverity.ERROR if level == "fail" else AssetCheckSeverity.WARN,
        description=summary,
        metadata={f"{k}_percent": v for k, v in percentages.items()},
    )


checks = [scraper_not_broken, unique_product_ids, cloudinary_quota]
