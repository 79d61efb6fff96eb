"""The tables over every manufacturer and upload: one DuckDB writer, never in parallel.

Only one process may write a DuckDB file, so partitions never touch it: these
unpartitioned assets keep their tables in step with the kits CSVs, audit and tag
rows (only the sources that changed are read; see catalog/incremental.py),
in the ``duckdb_writer`` pool (limit 1).
"""

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from image_assets.catalog.duckdb_catalog import (
    sync_clean_kits,
    sync_image_metadata,
    table_columns,
)
from image_assets.catalog.incremental import SyncStats
from image_assets.catalog.tags_table import hashed_tag_rows, sync_image_tags
from image_assets.defs.metadata import counts_table, table_shape
from image_assets.defs.resources import CatalogResource, StorageResource, VendorRegistryResource
from image_assets.defs.settings import catalog_freshness_policy
from image_assets.steps.tags import shared_pictures

GROUP = "catalog"
DUCKDB_POOL = "duckdb_writer"
# Eager, except that it does not wait for upstream partitions that are missing: an
# upload partition that failed (or a vendor not materialized yet) may never exist, and
# the tables over every image must still follow every one that was processed.
FOLLOWS_EVERY_PROCESSED_IMAGE = (
    AutomationCondition.eager()
    .without(~AutomationCondition.any_deps_missing())
    .with_label("eager (missing upstream partitions allowed)")
)


@asset(
    deps=["kits_csv"],
    group_name=GROUP,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    freshness_policy=catalog_freshness_policy(),
    # rebuilt whenever a manufacturer's kits CSV is updated (once all exist)
    automation_condition=AutomationCondition.eager(),
    description="DuckDB table clean_kits over every manufacturer's kits CSV (null-safe imageSrc).",
)
def clean_kits(
    context: AssetExecutionContext,
    registry: VendorRegistryResource,
    storage: StorageResource,
    catalog: CatalogResource,
) -> MaterializeResult:
    stats, counts, missing = sync_clean_kits(catalog.database, storage.raw(), registry.load().keys)
    if missing:
        context.log.warning(f"no kits CSV yet for: {', '.join(missing)} (materialize them first)")
    context.log.info(f"clean_kits: {_synced(stats)}")
    return MaterializeResult(
        metadata={
            "database": MetadataValue.path(catalog.database),
            "rows": sum(counts.values()),
            **_sync_metadata(stats),
            "rows_by_manufacturer": counts_table(counts, "manufacturer", "rows"),
            "manufacturers_missing": ", ".join(missing) or "none",
            **table_shape(table_columns(catalog.database, "clean_kits"), sum(counts.values())),
        }
    )


@asset(
    deps=["upload_renditions", "image_renditions"],
    group_name=GROUP,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    automation_condition=FOLLOWS_EVERY_PROCESSED_IMAGE,
    description="DuckDB table image_metadata: one audit row per processed image, uploads and vendor images alike.",
)
def image_metadata(
    context: AssetExecutionContext, storage: StorageResource, catalog: CatalogResource
) -> MaterializeResult:
    stats, counts = sync_image_metadata(catalog.database, storage.raw())
    context.log.info(f"image_metadata: {_synced(stats)}")
    return MaterializeResult(
        metadata={
            "rows": stats.rows,
            "rows_by_status": counts_table(counts, "status", "rows"),
            **_sync_metadata(stats),
            "database": MetadataValue.path(catalog.database),
            **table_shape(table_columns(catalog.database, "image_metadata"), stats.rows),
        }
    )


@asset(
    deps=["image_tags", "upload_renditions"],
    group_name=GROUP,
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    automation_condition=FOLLOWS_EVERY_PROCESSED_IMAGE,
    description="DuckDB table image_tags: hashes, colours and labels of every image, keyed "
    "like image_metadata; joins clean_kits on (manufacturer, product_id). Its metadata "
    "lists pictures shared across vendors.",
)
def image_tags_table(
    context: AssetExecutionContext,
    registry: VendorRegistryResource,
    storage: StorageResource,
    catalog: CatalogResource,
) -> MaterializeResult:
    stats, counts = sync_image_tags(catalog.database, storage.raw())
    context.log.info(f"image_tags: {_synced(stats)}")
    rows = hashed_tag_rows(catalog.database)
    bits = max((v.checks.near_duplicate_bits for v in registry.load().vendors), default=4)
    across = [
        s
        for s in shared_pictures(rows, bits)
        if len({key.split("/", 1)[0] for key in s.images}) > 1
    ]
    lines = ["| images |", "|---|"] + [f"| {', '.join(s.images)} |" for s in across[:25]]
    return MaterializeResult(
        metadata={
            "rows": stats.rows,
            "rows_by_status": counts_table(counts, "status", "rows"),
            **_sync_metadata(stats),
            "pictures_shared_across_vendors": len(across),
            "shared_across_vendors": MetadataValue.md("\n".join(lines)),
            "database": MetadataValue.path(catalog.database),
            **table_shape(table_columns(catalog.database, "image_tags"), stats.rows),
        }
    )


def _synced(stats: SyncStats) -> str:
    how = "rebuilt from every source" if stats.rebuilt else "kept in step"
    return (
        f"{how}: {stats.rows} rows from {stats.sources} sources, {stats.read} read, "
        f"{stats.replaced} replaced, {stats.removed} removed"
    )


def _sync_metadata(stats: SyncStats) -> dict:
    return {
        "sources": stats.sources,
        "sources_read": stats.read,
        "sources_replaced": stats.replaced,
        "sources_removed": stats.removed,
        "rebuilt": stats.rebuilt,
    }


assets = [clean_kits, image_metadata, image_tags_table]
