"""The one Definitions object of the code location (``image_assets.definitions:defs``)."""

from __future__ import annotations

from pathlib import Path

from dagster import Definitions, in_process_executor

from image_assets.defs.catalog import assets as catalog_assets
from image_assets.defs.io import JsonBlobIOManager
from image_assets.defs.jobs import jobs
from image_assets.defs.resources import (
    CatalogResource,
    CdnResource,
    HttpResource,
    RenditionsResource,
    StorageResource,
    VendorRegistryResource,
)
from image_assets.defs.settings import default_data_dir, env_or
from image_assets.defs.vendors import assets as vendor_assets
from image_assets.defs.vendors import checks as vendor_checks


def build_resources(data_dir: str | None = None) -> dict[str, object]:
    """Resources of the embedded `local` profile, rooted at ``data_dir``."""
    root = Path(data_dir or default_data_dir())
    storage = StorageResource(
        data_dir=str(root) if data_dir else env_or("IMAGE_ASSETS_DATA_DIR", str(root))
    )
    return {
        "storage": storage,
        "json_io_manager": JsonBlobIOManager(storage=storage),
        "registry": VendorRegistryResource(path=env_or("IMAGE_ASSETS_REGISTRY", "")),
        "renditions_config": RenditionsResource(path=env_or("IMAGE_ASSETS_RENDITIONS", "")),
        "http": HttpResource(),
        "cdn": CdnResource(
            local_root=str(root / "cdn"),
            local_base_url=env_or("IMAGE_ASSETS_CDN_BASE_URL", "") or None,
        ),
        "catalog": CatalogResource(database=str(root / "catalog.duckdb")),
    }


defs = Definitions(
    assets=[*vendor_assets.assets, *catalog_assets.assets],
    asset_checks=vendor_checks.checks,
    jobs=jobs,
    resources=build_resources(),
    # Each run is one process: steps of a partition are sequential anyway, and the
    # work inside an asset is parallel; this also keeps SQLite event writes few.
    executor=in_process_executor,
)
