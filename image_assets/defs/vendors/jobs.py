"""The per-manufacturer job: the main job of the platform."""

from dagster import AssetSelection, define_asset_job

from image_assets.defs.vendors.assets import GROUP

vendor_catalog_job = define_asset_job(
    "vendor_catalog_job",
    selection=AssetSelection.groups(GROUP),
    description="Scrape one manufacturer, process its images, publish them, write its kits CSV.",
)

jobs = [vendor_catalog_job]
