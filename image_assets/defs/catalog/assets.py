"""The clean catalog over every manufacturer: one DuckDB writer, never in parallel."""

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from image_assets.catalog.duckdb_catalog import build_catalog
from image_assets.catalog.kits_csv import kits_csv_key
from image_assets.defs.resources import CatalogResource, StorageResource, VendorRegistryResource
from image_assets.defs.settings import catalog_freshness_policy
from image_assets.defs.vendors.assets import kits_csv
from image_assets.storage import BlobNotFound

DUCKDB_POOL = "duckdb_writer"


@asset(
    deps=[kits_csv],
    group_name="catalog",
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
    raw = storage.raw()
    csvs: dict[str, bytes] = {}
    missing = []
    for key in registry.load().keys:
        try:
            csvs[key] = raw.get(kits_csv_key(key))
        except BlobNotFound:
            missing.append(key)
    if missing:
        context.log.warning(f"no kits CSV yet for: {', '.join(missing)} (materialize them first)")
    counts = build_catalog(catalog.database, csvs)
    context.log.info(f"clean_kits rebuilt with {sum(counts.values())} rows")
    return MaterializeResult(
        metadata={
            "database": MetadataValue.path(catalog.database),
            "rows": sum(counts.values()),
            "rows_by_manufacturer": MetadataValue.json(counts),
            "manufacturers_missing": MetadataValue.json(missing),
        }
    )


assets = [clean_kits]
