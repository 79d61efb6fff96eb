"""The housekeeping domain: CDN retention per manufacturer, its job and schedule."""

from dagster import Definitions

from image_assets.defs.housekeeping.assets import assets
from image_assets.defs.housekeeping.jobs import jobs
from image_assets.defs.housekeeping.schedules import schedules

defs = Definitions(assets=assets, jobs=jobs, schedules=schedules)
