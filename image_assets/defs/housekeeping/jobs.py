"""The housekeeping job: ``cdn_housekeeping`` of one manufacturer."""

from dagster import AssetSelection, define_asset_job

from image_assets.defs.housekeeping.assets import GROUP

cdn_housekeeping_job = define_asset_job(
    "cdn_housekeeping_job",
    selection=AssetSelection.groups(GROUP),
    description="Delete from the CDN what no kits CSV has referenced for the retention days.",
)

jobs = [cdn_housekeeping_job]
