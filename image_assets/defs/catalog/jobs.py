"""The catalog rebuild job."""

from dagster import AssetSelection, define_asset_job

from image_assets.defs.catalog.assets import GROUP

catalog_job = define_asset_job(
    "catalog_job",
    selection=AssetSelection.groups(GROUP),
    description="Rebuild the clean DuckDB catalog from every kits CSV, and the audit table.",
)

jobs = [catalog_job]
