"""The catalog domain: the DuckDB tables, their check, job and automation."""

from dagster import Definitions

from image_assets.defs.catalog.assets import assets
from image_assets.defs.catalog.checks import checks
from image_assets.defs.catalog.jobs import jobs
from image_assets.defs.catalog.sensors import sensors

defs = Definitions(assets=assets, asset_checks=checks, jobs=jobs, sensors=sensors)
