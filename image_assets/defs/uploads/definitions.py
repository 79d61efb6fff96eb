"""The uploads domain: upload assets, their jobs, the upload sensors and the expiry schedule."""

from dagster import Definitions

from image_assets.defs.uploads.assets import assets
from image_assets.defs.uploads.jobs import jobs
from image_assets.defs.uploads.schedules import schedules
from image_assets.defs.uploads.sensors import sensors

defs = Definitions(assets=assets, jobs=jobs, schedules=schedules, sensors=sensors)
