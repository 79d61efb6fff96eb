"""Upload assets on the dynamic ``uploads`` partitions.

``uploaded_images`` takes the file in (validated by content; accepted files kept
privately under a unique name, refused ones moved to the rejected area with
their reason); ``upload_renditions`` makes the configured renditions (the
200x200 thumbnail among them) and writes the audit row. The lifecycle itself
lives in ``uploads/lifecycle.py``; these assets only call it.
"""

from typing import Any

from dagster import AssetExecutionContext, Failure, MetadataValue, Output, asset

from image_assets.defs.resources import RenditionsResource, StorageResource
from image_assets.defs.uploads.partitions import uploads_partitions
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.records import UploadRecord
from image_assets.uploads.keys import object_key_for
from image_assets.uploads.lifecycle import UploadError, render_upload, take_in

GROUP = "uploads"
UPLOADS: dict[str, Any] = {
    "partitions_def": uploads_partitions,
    "group_name": GROUP,
    "io_manager_key": "json_io_manager",
}


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="An uploaded file, validated by content and kept privately under a unique name.",
)
def uploaded_images(
    context: AssetExecutionContext, uploads: UploadsResource, storage: StorageResource
) -> Output[dict]:
    object_key = object_key_for(context.partition_key)
    try:
        taken = take_in(uploads.stores(storage), context.partition_key, object_key)
    except UploadError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    record = taken.record
    if not taken.reprocessed:
        context.log.info(f"{object_key} was processed before: {record.status}")
    elif record.status == "accepted":
        context.log.info(
            f"Accepted {object_key} as {record.unique_name} "
            f"({record.width}x{record.height} {record.format})"
        )
    else:
        context.log.warning(f"Rejected {object_key}: {record.reason}")
    return Output(
        record.model_dump(mode="json"),
        metadata={
            "status": record.status,
            "reason": record.reason or "",
            "unique_name": record.unique_name or "",
            "bytes": record.bytes or 0,
            "reprocessed": taken.reprocessed,
        },
    )


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="Renditions of an accepted upload (200x200 thumbnail and the rest) and its audit row.",
)
def upload_renditions(
    context: AssetExecutionContext,
    uploads: UploadsResource,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    uploaded_images: dict,
) -> Output[dict]:
    record = UploadRecord.model_validate(uploaded_images)
    made, row = render_upload(
        uploads.stores(storage), record, renditions_config.config(), say=context.log.info
    )
    value = {
        "upload": record.model_dump(mode="json"),
        "renditions": made.model_dump(mode="json") if made else None,
    }
    return Output(
        value,
        metadata={
            "status": row.status,
            "renditions": row.renditions,
            "audit_row": MetadataValue.json(row.model_dump(mode="json")),
        },
    )


assets = [uploaded_images, upload_renditions]
