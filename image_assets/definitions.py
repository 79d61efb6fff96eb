"""The one Definitions object of the code location (``image_assets.definitions:defs``).

Each domain (vendors, uploads, catalog) defines its own assets, checks, jobs,
schedules and sensors; this merges them with the resources of the profile
that ``IMAGE_ASSETS_PROFILE`` picks (``defs/profiles.py``).
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from image_assets.defs.catalog.definitions import defs as catalog_defs
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads.definitions import defs as uploads_defs
from image_assets.defs.vendors.definitions import defs as vendors_defs

defs = Definitions.merge(
    vendors_defs,
    uploads_defs,
    catalog_defs,
    Definitions(
        resources=build_resources(),
        # Each run is one process: steps of a partition are sequential anyway, and the
        # work inside an asset is parallel; this also keeps SQLite event writes few.
        executor=in_process_executor,
    ),
)
