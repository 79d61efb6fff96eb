"""Upload jobs: processing (sensor-triggered), activation, and expiry of unactivated uploads."""

from typing import Any

from dagster import (
    AssetSelection,
    Config,
    Failure,
    OpExecutionContext,
    define_asset_job,
    job,
    op,
)

from image_assets.defs.resources import StorageResource
from image_assets.defs.uploads.assets import GROUP
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.uploads.lifecycle import UploadError, activate, expire

upload_job = define_asset_job(
    "upload_job",
    selection=AssetSelection.groups(GROUP),
    tags={"image_assets/kind": "upload"},
    description="Validate, orient, rename and render a batch of uploads (one partition each); "
    "write their audit rows.",
)


class ActivateConfig(Config):
    upload_id: str


@op(description="Move an upload's original and renditions to the public active location.")
def activate_upload(
    context: OpExecutionContext,
    config: ActivateConfig,
    storage: StorageResource,
    uploads: UploadsResource,
) -> None:
    stores = uploads.stores(storage)
    try:
        activation = activate(stores, config.upload_id)
    except UploadError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    context.log.info(
        f"Activated {activation.row.key}: {len(activation.public_keys)} files public "
        f"at {stores.public.uri(activation.public_keys[0]) if activation.public_keys else '-'}"
    )


@job(
    description="Make one processed upload public (config: upload_id).",
    tags={"image_assets/kind": "upload-admin"},
)
def activate_upload_job():
    activate_upload()


@op(description="Delete uploads that were not activated within the TTL, with their renditions.")
def expire_uploads(
    context: OpExecutionContext, storage: StorageResource, uploads: UploadsResource
) -> None:
    expired = expire(uploads.stores(storage), uploads.ttl_hours)
    for row in expired:
        context.log.info(f"Expired {row.key} (processed at {row.processed_at})")
    context.log.info(f"{len(expired)} upload(s) expired (TTL {uploads.ttl_hours} h)")


@job(
    description="Delete unactivated uploads past their TTL.",
    tags={"image_assets/kind": "upload-admin"},
)
def expire_uploads_job():
    expire_uploads()


jobs: list[Any] = [  # asset jobs and op jobs: Dagster exports no common type for both
    upload_job,
    activate_upload_job,
    expire_uploads_job,
]
