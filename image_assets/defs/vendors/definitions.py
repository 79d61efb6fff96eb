"""The vendors domain: per-manufacturer assets, their checks, job and schedule."""

from dagster import Definitions

from image_assets.defs.vendors.assets import assets
from image_assets.defs.vendors.checks import checks
from image_assets.defs.vendors.jobs import jobs
from image_assets.defs.vendors.schedules import schedules

defs = Definitions(assets=assets, asset_checks=checks, jobs=jobs, schedules=schedules)
