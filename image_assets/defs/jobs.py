"""Jobs: the per-manufacturer catalog job (the main job) and the catalog rebuild."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

vendor_catalog_job = define_asset_job(
    "vendor_catalog_job",
    selection=AssetSelection.groups("vendor_catalog"),
    description="Scrape one manufacturer, process its images, publish them, write its kits CSV.",
)

catalog_job = define_asset_job(
    "catalog_job",
    selection=AssetSelection.groups("catalog"),
    description="Rebuild the clean DuckDB catalog from every kits CSV.",
)

jobs = [vendor_catalog_job, catalog_job]
