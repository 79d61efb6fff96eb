"""The one Definitions object of the code location (``image_assets.definitions:defs``).

Each domain (vendors, uploads, catalog, housekeeping) defines its own assets, checks, jobs,
schedules and sensors; this merges them with the resources of the profile
that ``IMAGE_ASSETS_PROFILE`` picks (``defs/profiles.py``).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from image_assets.defs.catalog import definitions as catalog
from image_assets.defs.housekeeping import definitions as housekeeping
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads import definitions as uploads
from image_assets.defs.vendors import definitions as vendors

# Domain Definitions are reached through their modules: Dagster refuses a code
# location module with more than one Definitions object at module scope.
defs = Definitions.merge(
    vendors.defs,
    uploads.defs,
    catalog.defs,
    housekeeping.defs,
    Definitions(
        resources=build_resources(),
        # Each run is one process: steps of a partition are sequential anyway, and the
        # work inside an asset is parallel; this also keeps SQLite event writes few.
        executor=in_process_executor,
    ),
)
