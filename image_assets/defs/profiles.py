"""The resources of each profile; ``IMAGE_ASSETS_PROFILE`` picks one.

- `local` (default): everything under one data folder (blob stores, local CDN,
  uploads areas, DuckDB); Cloudinary only when ``CLOUDINARY_URL`` is set.
- `aws`: S3 raw and image buckets, Cloudinary with credentials from Secrets
  Manager (or ``CLOUDINARY_URL``) and S3 as the fallback CDN, uploads in an S3
  bucket (optionally announced on SQS).

Every value is read through ``EnvVar`` when its variable is set (see the
README's table), so the UI shows where it came from.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_aws.secretsmanager import SecretsManagerResource

from image_assets.cdn.credentials import DEFAULT_SECRET_NAME
from image_assets.defs.io import JsonBlobIOManager, PartitionedJsonIOManager
from image_assets.defs.resources import (
    CatalogResource,
    CdnResource,
    HttpResource,
    RenditionsResource,
    StorageResource,
    TaggerResource,
    VendorRegistryResource,
)
from image_assets.defs.settings import default_data_dir, env_or, setting
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.settings import PROFILES, PlatformSettings

# dagster-aws marks SecretsManagerResource beta and says so each time Dagster rebuilds
# the resource (in every run process, on both profiles). The version is pinned
# (<0.30) and the resource is tested against Secrets Manager on moto: the notice is
# for this project's maintainers, not for the people running it.
warnings.filterwarnings("ignore", message="Class `SecretsManagerResource` is currently in beta")


def _aws_clients() -> tuple[S3Resource, SecretsManagerResource]:
    region = env_or("AWS_REGION", "us-east-1")
    endpoint = env_or("AWS_ENDPOINT_URL", "") or None
    s3 = S3Resource(region_name=region, endpoint_url=endpoint)
    with warnings.catch_warnings():  # dagster-aws marks it beta; it is what reads the secret
        warnings.simplefilter("ignore")
        secrets = SecretsManagerResource(region_name=region, endpoint_url=endpoint)
    return s3, secrets


def _upload_tuning() -> dict[str, Any]:
    """Batch size and settle time of the upload sensors, when set in the environment."""
    tuning: dict[str, Any] = {}
    if os.environ.get("IMAGE_ASSETS_UPLOAD_BATCH_SIZE"):
        tuning["batch_size"] = int(os.environ["IMAGE_ASSETS_UPLOAD_BATCH_SIZE"])
    if os.environ.get("IMAGE_ASSETS_UPLOAD_SETTLE_SECONDS"):
        tuning["settle_seconds"] = float(os.environ["IMAGE_ASSETS_UPLOAD_SETTLE_SECONDS"])
    if os.environ.get("IMAGE_ASSETS_UPLOAD_LEASE_SECONDS"):
        tuning["lease_seconds"] = float(os.environ["IMAGE_ASSETS_UPLOAD_LEASE_SECONDS"])
    return tuning


def _common(root: Path, storage: StorageResource) -> dict[str, object]:
    """What both profiles share: the registry, renditions, HTTP client and catalog file."""
    return {
        "storage": storage,
        "json_io_manager": JsonBlobIOManager(storage=storage),
        "partitioned_json_io_manager": PartitionedJsonIOManager(storage=storage),
        "registry": VendorRegistryResource(path=env_or("IMAGE_ASSETS_REGISTRY", "")),
        "renditions_config": RenditionsResource(),
        "tagger": TaggerResource(
            # a plain value, checked when the definitions load (an EnvVar would only be
            # read in the run, and a Literal field cannot take one)
            kind=os.environ.get("IMAGE_ASSETS_TAGGER") or "none",  # type: ignore[arg-type]
            region_name=env_or("AWS_REGION", "us-east-1"),
            endpoint_url=env_or("AWS_ENDPOINT_URL", ""),
        ),
        "http": HttpResource(),
        "catalog": CatalogResource(
            database=env_or(
                "IMAGE_ASSETS_CATALOG_DB", str(PlatformSettings(data_dir=root).catalog_path)
            )
        ),
    }


def local_resources(root: Path, data_root: str) -> dict[str, object]:
    """Folders under one data root; the delivery service (`self`) as CDN unless
    ``CLOUDINARY_URL`` is set (then Cloudinary, with `self` as fallback)."""
    s3, secrets = _aws_clients()
    storage = StorageResource(kind="local", data_dir=data_root, s3=s3)
    cloudinary = bool(os.environ.get("CLOUDINARY_URL"))
    cdn = CdnResource(
        backend="cloudinary" if cloudinary else "self",
        fallback="self" if cloudinary else "none",
        local_root=str(PlatformSettings(data_dir=root).cdn_dir),  # what the service serves
        self_base_url=setting("delivery_url"),
        self_secret=env_or("IMAGE_ASSETS_DELIVERY_SECRET", ""),
        cloudinary_url=env_or("CLOUDINARY_URL", ""),
        cloudinary_upload_prefix=env_or("CLOUDINARY_UPLOAD_PREFIX", ""),
        s3=s3,
        secrets=secrets,
    )
    uploads = UploadsResource(
        kind="local",
        data_dir=data_root,
        s3=s3,
        **_upload_tuning(),
    )
    return {**_common(root, storage), "cdn": cdn, "uploads": uploads}


def aws_resources(root: Path, data_root: str) -> dict[str, object]:
    """S3 stores, Cloudinary with S3 as fallback, uploads in S3 (and SQS)."""
    s3, secrets = _aws_clients()
    storage = StorageResource(
        kind="s3",
        data_dir=data_root,
        raw_bucket=setting("raw_bucket"),
        images_bucket=setting("images_bucket"),
        prefix=setting("s3_prefix"),
        s3=s3,
    )
    cdn = CdnResource(
        backend="cloudinary",
        fallback="s3",
        cloudinary_url=env_or("CLOUDINARY_URL", ""),
        cloudinary_secret_name=env_or("CLOUDINARY_SECRET_NAME", DEFAULT_SECRET_NAME),
        cloudinary_upload_prefix=env_or("CLOUDINARY_UPLOAD_PREFIX", ""),
        s3_bucket=setting("cdn_bucket"),  # the bucket the service serves masters from
        s3_prefix=setting("cdn_prefix"),
        public_base_url=env_or("IMAGE_ASSETS_CDN_PUBLIC_URL", ""),
        s3_access=os.environ.get("IMAGE_ASSETS_CDN_ACCESS") or "public",  # type: ignore[arg-type]
        cloudfront_distribution_id=env_or("IMAGE_ASSETS_CDN_DISTRIBUTION_ID", ""),
        cloudfront_origin_path=env_or("IMAGE_ASSETS_CDN_ORIGIN_PATH", ""),
        s3=s3,
        secrets=secrets,
    )
    uploads = UploadsResource(
        kind="s3",
        bucket=setting("uploads_bucket"),
        public_bucket=setting("cdn_bucket"),
        queue_url=env_or("IMAGE_ASSETS_UPLOADS_QUEUE_URL", ""),
        s3=s3,
        **_upload_tuning(),
    )
    return {**_common(root, storage), "cdn": cdn, "uploads": uploads}


def build_resources(data_dir: str | None = None, profile: str | None = None) -> dict[str, object]:
    """The resources of ``profile`` (default ``IMAGE_ASSETS_PROFILE``, else `local`), with
    local data under ``data_dir`` (default ``IMAGE_ASSETS_DATA_DIR``, else ``./.data``)."""
    root = Path(data_dir or default_data_dir())
    profile = profile or PlatformSettings.from_env().profile  # ValueError when unknown
    if profile not in PROFILES:
        raise ValueError(f"IMAGE_ASSETS_PROFILE must be 'local' or 'aws', not {profile!r}")
    data_root = str(root) if data_dir else env_or("IMAGE_ASSETS_DATA_DIR", str(root))
    builder = aws_resources if profile == "aws" else local_resources
    return builder(root, data_root)
