"""The housekeeping jobs: ``cdn_housekeeping`` of one manufacturer, and the private
store's old renditions."""

from dagster import AssetSelection, define_asset_job

from image_assets.defs.housekeeping.assets import cdn_housekeeping, renditions_housekeeping

cdn_housekeeping_job = define_asset_job(
    "cdn_housekeeping_job",
    selection=AssetSelection.assets(cdn_housekeeping),
    description="Delete from the CDN what no kits CSV has referenced for the retention days.",
)
renditions_housekeeping_job = define_asset_job(
    "renditions_housekeeping_job",
    selection=AssetSelection.assets(renditions_housekeeping),
    description="Delete renditions of earlier rendition configs once every vendor re-rendered.",
)

jobs = [cdn_housekeeping_job, renditions_housekeeping_job]
