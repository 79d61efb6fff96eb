"""The one Definitions object of the code location (``image_assets.definitions:defs``)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from dagster import Definitions, in_process_executor
from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from image_assets.cdn.credentials import DEFAULT_SECRET_NAME
from image_assets.defs.catalog import assets as catalog_assets
from image_assets.defs.catalog import checks as catalog_checks
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
from image_assets.defs.schedules import schedules, sensors
from image_assets.defs.settings import default_data_dir, env_or
from image_assets.defs.uploads import assets as upload_assets
from image_assets.defs.uploads import jobs as upload_jobs
from image_assets.defs.uploads import sensors as upload_sensors
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.defs.vendors import assets as vendor_assets
from image_assets.defs.vendors import checks as vendor_checks


def build_resources(data_dir: str | None = None, profile: str | None = None) -> dict[str, object]:
    """Resources of the `local` (default) or `aws` profile (``IMAGE_ASSETS_PROFILE``).

    `local`: everything under one data folder (blob stores, local CDN, DuckDB).
    `aws`: S3 raw and image buckets, Cloudinary with credentials from Secrets
    Manager (or ``CLOUDINARY_URL``) and S3 as the fallback CDN. Every value is
    read through ``EnvVar`` when the variable is set; see the README's table.
    """
    root = Path(data_dir or default_data_dir())
    profile = profile or os.environ.get("IMAGE_ASSETS_PROFILE") or "local"
    if profile not in ("local", "aws"):
        raise ValueError(f"IMAGE_ASSETS_PROFILE must be 'local' or 'aws', not {profile!r}")
    s3 = S3Resource(
        region_name=env_or("AWS_REGION", "us-east-1"),
        endpoint_url=env_or("AWS_ENDPOINT_URL", "") or None,
    )
    with warnings.catch_warnings():  # dagster-aws marks it beta; it is what reads the secret
        warnings.simplefilter("ignore")
        secrets = SecretsManagerResource(
            region_name=env_or("AWS_REGION", "us-east-1"),
            endpoint_url=env_or("AWS_ENDPOINT_URL", "") or None,
        )
    data_root = str(root) if data_dir else env_or("IMAGE_ASSETS_DATA_DIR", str(root))
    if profile == "aws":
        storage = StorageResource(
            kind="s3",
            data_dir=data_root,
            raw_bucket=env_or("IMAGE_ASSETS_RAW_BUCKET", "image-assets-raw"),
            images_bucket=env_or("IMAGE_ASSETS_IMAGES_BUCKET", "image-assets-images"),
            prefix=env_or("IMAGE_ASSETS_S3_PREFIX", ""),
            s3=s3,
        )
        cdn = CdnResource(
            backend="cloudinary",
            fallback="s3",
            cloudinary_url=env_or("CLOUDINARY_URL", ""),
            cloudinary_secret_name=env_or("CLOUDINARY_SECRET_NAME", DEFAULT_SECRET_NAME),
            cloudinary_upload_prefix=env_or("CLOUDINARY_UPLOAD_PREFIX", ""),
            s3_bucket=env_or("IMAGE_ASSETS_CDN_BUCKET", "image-assets-cdn"),
            s3_prefix=env_or("IMAGE_ASSETS_CDN_PREFIX", ""),
            public_base_url=env_or("IMAGE_ASSETS_CDN_PUBLIC_URL", ""),
            s3=s3,
            secrets=secrets,
        )
    else:
        storage = StorageResource(kind="local", data_dir=data_root, s3=s3)
        cdn = CdnResource(
            backend="cloudinary" if os.environ.get("CLOUDINARY_URL") else "local",
            fallback="local" if os.environ.get("CLOUDINARY_URL") else "none",
            local_root=str(root / "cdn"),
            local_base_url=env_or("IMAGE_ASSETS_CDN_BASE_URL", ""),
            cloudinary_url=env_or("CLOUDINARY_URL", ""),
            cloudinary_upload_prefix=env_or("CLOUDINARY_UPLOAD_PREFIX", ""),
            s3=s3,
            secrets=secrets,
        )
    if profile == "aws":
        uploads = UploadsResource(
            kind="s3",
            bucket=env_or("IMAGE_ASSETS_UPLOADS_BUCKET", "image-assets-uploads"),
            public_bucket=env_or("IMAGE_ASSETS_CDN_BUCKET", "image-assets-cdn"),
            queue_url=env_or("IMAGE_ASSETS_UPLOADS_QUEUE_URL", ""),
            s3=s3,
        )
    else:
        uploads = UploadsResource(kind="local", data_dir=data_root, s3=s3)
    return {
        "uploads": uploads,
        "storage": storage,
        "json_io_manager": JsonBlobIOManager(storage=storage),
        "registry": VendorRegistryResource(path=env_or("IMAGE_ASSETS_REGISTRY", "")),
        "renditions_config": RenditionsResource(path=env_or("IMAGE_ASSETS_RENDITIONS", "")),
        "http": HttpResource(),
        "cdn": cdn,
        "catalog": CatalogResource(
            database=env_or("IMAGE_ASSETS_CATALOG_DB", str(root / "catalog.duckdb"))
        ),
    }


defs = Definitions(
    assets=[*vendor_assets.assets, *catalog_assets.assets, *upload_assets.assets],
    asset_checks=[*vendor_checks.checks, *catalog_checks.checks],
    jobs=[*jobs, *upload_jobs.jobs],
    schedules=[*schedules, *upload_jobs.schedules],
    sensors=[*sensors, *upload_sensors.sensors],
    resources=build_resources(),
    # Each run is one process: steps of a partition are sequential anyway, and the
    # work inside an asset is parallel; this also keeps SQLite event writes few.
    executor=in_process_executor,
)
