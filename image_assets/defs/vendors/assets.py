"""The per-manufacturer asset chain: pages -> products -> images -> renditions -> CDN -> kits CSV.

Assets are thin: load inputs, call one step of the core, return records and
metadata. Records flow between assets through the JSON IO manager.
"""

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset

from image_assets.catalog.audit import save_vendor_audit_rows, vendor_audit_rows
from image_assets.catalog.kits_csv import (
    CSV_TYPES,
    build_rows,
    kits_table,
    preview_markdown,
    published_ids,
    render_csv,
)
from image_assets.catalog.tags_table import load_manufacturer_tag_rows, save_tag_rows
from image_assets.cdn.base import CdnError
from image_assets.cdn.cloudinary import CloudinaryCdn, quota_percentages
from image_assets.defs.metadata import counts_table, table_shape
from image_assets.defs.resources import (
    CdnResource,
    HttpResource,
    RenditionsResource,
    StorageResource,
    TaggerResource,
    VendorRegistryResource,
)
from image_assets.defs.settings import (
    catalog_freshness_policy,
    network_retry_policy,
    rendition_config,
)
from image_assets.defs.vendors.partitions import manufacturer_partitions
from image_assets.layout import http_cache_key, kits_csv_key
from image_assets.records import ImageRecord, ImageRenditions, PageRecord, Product, PublishedImage
from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.crawl import CatalogUnavailable, crawl_vendor, parse_products
from image_assets.steps.originals import fetch_originals
from image_assets.steps.publish import publish_images
from image_assets.steps.renditions import render_images
from image_assets.steps.tags import TAGS_REVISION, tag_images
from image_assets.storage import BlobNotFound
from image_assets.storage.leases import Leases, LeaseTimeout, held, new_owner

GROUP = "vendor_catalog"
COMMON: dict[str, Any] = {
    "partitions_def": manufacturer_partitions,
    "group_name": GROUP,
    "io_manager_key": "json_io_manager",
}


# How long a vendor's writing steps hold its lease after their last renewal, and how
# long a second run of the same vendor waits for it (the run queue keeps one run per
# vendor; this covers runs started outside it, such as a CLI materialize)
VENDOR_LEASE_SECONDS = 120.0


@contextlib.contextmanager
def _vendor_writes(context: AssetExecutionContext, storage: StorageResource) -> Iterator[None]:
    """One run at a time writes a vendor's CDN ledger and kits CSV: a second run of the
    same manufacturer waits here for the first to finish that step."""
    wait = float(os.environ.get("IMAGE_ASSETS_VENDOR_LEASE_WAIT_SECONDS") or 3600)
    leases = Leases(storage.raw(), VENDOR_LEASE_SECONDS)
    owner = new_owner(f"run {context.run.run_id[:8]}")
    try:
        with held(leases, f"vendor/{context.partition_key}", owner, wait, say=context.log.info):
            yield
    except LeaseTimeout as exc:
        raise Failure(
            f"another run of {context.partition_key} kept writing: {exc}", allow_retries=True
        ) from None


def _dump(records: list) -> list[dict]:
    return [r.model_dump(mode="json") for r in records]


@asset(
    **COMMON,
    kinds={"http"},
    retry_policy=network_retry_policy(),
    description="Raw catalog pages of one vendor, kept in the raw store.",
)
def vendor_pages(
    context: AssetExecutionContext,
    registry: VendorRegistryResource,
    http: HttpResource,
    storage: StorageResource,
) -> Output[list[dict]]:
    vendor = registry.load().get(context.partition_key)
    with http.client(vendor) as client:
        try:
            result = crawl_vendor(vendor, client, storage.raw(), progress=context.log.info)
        except CatalogUnavailable as exc:
            raise Failure(
                description=f"{exc}. The previous outputs of {vendor.key!r} are left untouched.",
                allow_retries=False,  # the HTTP client has already retried with backoff
            ) from None
    s = result.stats
    return Output(
        _dump(result.pages),
        metadata={
            "pages": len(result.pages),
            "pages_fetched": s.fetched,
            "pages_not_modified": s.not_modified,
            "pages_failed": s.failed + s.refused,
            "pages_disallowed_by_robots": s.robots,
            "bytes_fetched": s.bytes_fetched,
        },
    )


@asset(
    **COMMON,
    kinds={"python"},
    freshness_policy=catalog_freshness_policy(),
    description="Products parsed from the stored pages (no network).",
)
def vendor_products(
    context: AssetExecutionContext,
    registry: VendorRegistryResource,
    storage: StorageResource,
    vendor_pages: list[dict],
) -> Output[list[dict]]:
    vendor = registry.load().get(context.partition_key)
    pages = [PageRecord.model_validate(p) for p in vendor_pages]
    raw = storage.raw()
    try:  # ids once published stay put, whatever rule made them
        published = published_ids(raw.get(kits_csv_key(vendor.key)))
    except BlobNotFound:
        published = {}
    products, problems = parse_products(vendor, pages, raw, published)
    for problem in problems[:20]:
        context.log.warning(problem)
    return Output(
        _dump(products),
        metadata={
            "products": len(products),
            "products_without_name": sum(1 for p in products if not p.name),
            "products_without_images": sum(1 for p in products if not p.image_urls),
            "image_urls": sum(len(p.image_urls) for p in products),
            "parse_problems": len(problems),
        },
    )


@asset(
    **COMMON,
    kinds={"http"},
    retry_policy=network_retry_policy(),
    description="Downloaded originals, kept privately by sha256; format, size and "
    "completeness checked from the bytes (no pixel decode here).",
)
def product_images(
    context: AssetExecutionContext,
    registry: VendorRegistryResource,
    http: HttpResource,
    storage: StorageResource,
    vendor_products: list[dict],
) -> Output[list[dict]]:
    vendor = registry.load().get(context.partition_key)
    products = [Product.model_validate(p) for p in vendor_products]
    cache = ValidatorCache(storage.raw(), http_cache_key(vendor.key, "images"))
    with http.client(vendor) as client:
        records, stats = fetch_originals(
            products,
            client,
            storage.images(),
            cache,
            workers=client.settings.per_host_concurrency,
            say=context.log.info,
        )
    for record in records:
        if record.status == "failed":
            context.log.warning(
                f"image {record.source_url} of {record.product_id}: {record.reason} ({record.failure})"
            )
    return Output(
        _dump(records),
        metadata={
            "images": len(records),
            "images_ok": len(records) - stats.failed,
            "images_failed": stats.failed,
            "images_downloaded": stats.downloaded,
            "images_not_modified": stats.not_modified,
            "new_originals": stats.new_originals,
            "bytes_downloaded": stats.bytes_downloaded,
            "failures_by_kind": counts_table(stats.failures, "kind"),
        },
    )


@asset(
    **COMMON,
    kinds={"pillow"},
    code_version=rendition_config().fingerprint(),
    description="One decode per original: the CDN master, thumbnails and responsive sizes "
    "(WebP + JPEG fallback), LQIP and blurhash placeholders.",
)
def image_renditions(
    context: AssetExecutionContext,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    product_images: list[dict],
) -> Output[list[dict]]:
    config = renditions_config.config()
    images = [ImageRecord.model_validate(i) for i in product_images]
    results, stats = render_images(
        images,
        storage.images(),
        config,
        workers=renditions_config.workers or None,
        say=context.log.info,
    )
    for result in results:
        if result.status == "failed":
            context.log.warning(f"image {result.position} of {result.product_id}: {result.reason}")
    save_vendor_audit_rows(
        storage.raw(),
        context.partition_key,
        vendor_audit_rows(context.partition_key, images, results),
    )
    saved = 1 - stats.bytes_out / stats.bytes_in if stats.bytes_in else 0.0
    return Output(
        _dump(results),
        metadata={
            "images": stats.images,
            "images_encoded": stats.encoded,
            "images_reused": stats.reused,
            "renditions_failed": stats.failed,
            "rendition_files": stats.files,
            "bytes_in": stats.bytes_in,
            "bytes_out": stats.bytes_out,
            "share_saved": round(saved, 3),
            "config_fingerprint": config.fingerprint(),
        },
    )


@asset(
    **COMMON,
    kinds={"cdn"},
    retry_policy=network_retry_policy(),
    description="Masters and renditions published through the CDN backend.",
)
def cdn_uploads(
    context: AssetExecutionContext,
    cdn: CdnResource,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    product_images: list[dict],
    image_renditions: list[dict],
) -> Output[list[dict]]:
    images = [ImageRecord.model_validate(i) for i in product_images]
    renditions = [ImageRenditions.model_validate(r) for r in image_renditions]
    backends, warnings = cdn.chain()
    for warning in warnings:
        context.log.warning(warning)
    with _vendor_writes(context, storage):  # the ledger: read, then written back
        published, stats = publish_images(
            context.partition_key,
            images,
            renditions,
            storage.images(),
            backends,
            specs={spec.name: spec for spec in renditions_config.config().renditions},
            say=context.log.info,
            warn=context.log.warning,
        )
    context.log.info(f"Uploaded {stats.uploaded} images in {stats.duration:.1f} seconds")
    metadata: dict[str, Any] = {
        "images_uploaded": stats.uploaded,
        "images_unchanged": stats.unchanged,
        "images_failed": stats.failed,
        "fallback_uploads": stats.fallback,
        "returned_to_primary": stats.returned_to_primary,
        # the same bytes were on the CDN under another public id: pointed at, not stored
        "uploads_saved": stats.uploads_saved,
        "bytes_saved": stats.bytes_saved,
        "cdn_holdings": MetadataValue.json(stats.listings),
        "rendition_uploads": stats.rendition_uploads,
        "bytes_uploaded": stats.bytes_uploaded,
        "upload_duration_s": round(stats.duration, 3),
        "images_by_storage": counts_table(stats.by_storage, "storage"),
        "failures_by_kind": counts_table(stats.failures, "kind"),
        "backends": ", ".join(b.storage for b in backends),
    }
    cloudinary = next((b for b in backends if isinstance(b, CloudinaryCdn)), None)
    if cloudinary is not None:
        try:
            quota = quota_percentages(cloudinary.usage())
            metadata |= {f"quota_{k}_percent": v for k, v in quota.items()}
            metadata["quota_max_percent"] = max(quota.values(), default=0.0)
        except CdnError as exc:
            context.log.warning(f"Cloudinary usage unavailable: {exc}")
    return Output(_dump(published), metadata=metadata)


@asset(
    **{**COMMON, "io_manager_key": "io_manager"},
    kinds={"csv"},
    freshness_policy=catalog_freshness_policy(),
    description="kits/{manufacturer}_kits.csv in the raw store: the website's contract.",
)
def kits_csv(
    context: AssetExecutionContext,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    vendor_products: list[dict],
    cdn_uploads: list[dict],
) -> Output[None]:
    started = time.monotonic()
    products = [Product.model_validate(p) for p in vendor_products]
    published = [PublishedImage.model_validate(u) for u in cdn_uploads]
    rows = build_rows(products, published)
    data = render_csv(rows)
    raw = storage.raw()
    key = kits_csv_key(context.partition_key)
    with _vendor_writes(context, storage):
        try:
            changed = raw.get(key) != data
        except BlobNotFound:
            changed = True
        if changed:
            raw.put(key, data, "text/csv")
    with_image = sum(1 for r in rows if r["image"])
    return Output(
        None,
        metadata={
            "path": MetadataValue.path(raw.uri(key)),
            "products": len(rows),
            "products_with_image": with_image,
            "products_without_image": len(rows) - with_image,
            "images_uploaded": sum(1 for p in published if p.status == "uploaded"),
            "images_failed": sum(1 for p in published if p.status == "failed"),
            "changed": changed,
            "bytes_out": len(data),
            "duration_s": round(time.monotonic() - started, 3),
            "preview": MetadataValue.md(
                preview_markdown(
                    rows, published, renditions_config.config().preview_rendition().name
                )
            ),
            **table_shape(((c.name, CSV_TYPES[c.type]) for c in kits_table()), len(rows)),
        },
    )


@asset(
    **COMMON,
    kinds={"python"},
    code_version=TAGS_REVISION,
    description="What each image looks like: pHash and dHash, average and dominant colours "
    "(CIELAB), and labels from the tagger when IMAGE_ASSETS_TAGGER names one. A bad image "
    "keeps its row with the reason; a tagger that is down leaves labels missing, with why.",
)
def image_tags(
    context: AssetExecutionContext,
    storage: StorageResource,
    tagger: TaggerResource,
    image_renditions: list[dict],
) -> Output[list[dict]]:
    made = [ImageRenditions.model_validate(r) for r in image_renditions]
    started = time.monotonic()
    previous = load_manufacturer_tag_rows(storage.raw(), context.partition_key)
    rows, stats = tag_images(
        context.partition_key,
        made,
        storage.images(),
        tagger.tagger(),
        say=context.log.warning,
        previous=previous,
    )
    save_tag_rows(storage.raw(), context.partition_key, rows)
    return Output(
        _dump(rows),
        metadata={
            "images": stats.images,
            "images_tagged": stats.tagged,
            "images_reused": stats.reused,
            "images_failed": stats.failed,
            "labels": counts_table(stats.labels, "labels", "images"),
            "tagger": tagger.kind,
            "duration_s": round(time.monotonic() - started, 3),
        },
    )


assets = [
    vendor_pages,
    vendor_products,
    product_images,
    image_renditions,
    cdn_uploads,
    kits_csv,
    image_tags,
]
