"""Upload assets on the dynamic ``uploads`` partitions, and the audit table.

``uploaded_images`` validates by content and moves the file out of the incoming
location: accepted files to the private image store under a unique name,
refused ones to the rejected area with their reason. ``upload_renditions`` makes
the configured renditions (the 200x200 thumbnail among them) in the private
processed area and writes the audit row. ``image_metadata`` gathers every audit
row, vendor images included, into DuckDB.
"""

import json
import time

from dagster import (
    AssetExecutionContext,
    AutomationCondition,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from image_assets.catalog.audit import AuditRow
from image_assets.catalog.duckdb_catalog import build_image_metadata
from image_assets.catalog.records import ImageRecord, ImageRenditions
from image_assets.defs.catalog.assets import DUCKDB_POOL
from image_assets.defs.resources import CatalogResource, RenditionsResource, StorageResource
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.defs.vendors.assets import image_renditions
from image_assets.steps.renditions import render_images
from image_assets.storage import BlobNotFound
from image_assets.uploads.keys import object_key_for
from image_assets.uploads.process import UploadRecord, examine_upload

uploads_partitions = DynamicPartitionsDefinition(name="uploads")
UPLOADS = {
    "partitions_def": uploads_partitions,
    "group_name": "uploads",
    "io_manager_key": "json_io_manager",
}


def upload_audit_key(upload_id: str) -> str:
    return f"audit/uploads/{upload_id}.json"


def previous_upload(storage: StorageResource, upload_id: str) -> UploadRecord | None:
    try:
        return UploadRecord.model_validate_json(
            storage.raw().get(f"state/assets/uploaded_images/{upload_id}.json")
        )
    except BlobNotFound:
        return None


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="An uploaded file, validated by content and kept privately under a unique name.",
)
def uploaded_images(
    context: AssetExecutionContext, uploads: UploadsResource, storage: StorageResource
) -> Output[dict]:
    upload_id = context.partition_key
    key = object_key_for(upload_id)
    incoming = uploads.incoming()
    try:
        info = incoming.info(key)
        data = incoming.get(key)
    except BlobNotFound:
        previous = previous_upload(storage, upload_id)
        if previous is None:
            raise Failure(
                f"upload {key!r} is not in the incoming location (and was never processed)"
            ) from None
        context.log.info(f"{key} was processed before: {previous.status}")
        return Output(
            previous.model_dump(mode="json"),
            metadata={"status": previous.status, "reprocessed": False},
        )
    record = examine_upload(upload_id, key, data, info.modified)
    if record.status == "accepted":
        assert record.original_key
        storage.images().put(record.original_key, data)
        context.log.info(
            f"Accepted {key} as {record.unique_name} ({record.width}x{record.height} {record.format})"
        )
    else:
        rejected = uploads.rejected()
        rejected.put(key, data)
        rejected.put(
            f"{key}.reason.json",
            json.dumps({"reason": record.reason, "at": record.processed_at}).encode(),
        )
        context.log.warning(f"Rejected {key}: {record.reason}")
    incoming.delete(key)  # moved, not copied: the incoming location only holds new files
    return Output(
        record.model_dump(mode="json"),
        metadata={
            "status": record.status,
            "reason": record.reason or "",
            "unique_name": record.unique_name or "",
            "bytes": len(data),
        },
    )


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="Renditions of an accepted upload (200x200 thumbnail and the rest) and its audit row.",
)
def upload_renditions(
    context: AssetExecutionContext,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    uploaded_images: dict,
) -> Output[dict]:
    record = UploadRecord.model_validate(uploaded_images)
    made: ImageRenditions | None = None
    if record.status == "accepted":
        image = ImageRecord(
            product_id=record.upload_id,
            position=1,
            source_url=record.object_key,
            status="ok",
            original_key=record.original_key,
            original_sha256=record.sha256,
            original_bytes=record.bytes,
        )
        (made,), _ = render_images(
            [image], storage.images(), renditions_config.config(), workers=1, say=context.log.info
        )
    failed = made is not None and made.status == "failed"
    row = AuditRow(
        key=record.unique_name or record.upload_id,
        source="upload",
        original_name=record.original_name,
        sha256=record.sha256,
        bytes=record.bytes,
        width=record.width,
        height=record.height,
        format=record.format,
        renditions=len(made.renditions) if made else 0,
        status="rejected" if record.status == "rejected" or failed else "processed",
        reason=record.reason or (made.reason if failed and made else None),
        received_at=record.received_at,
        processed_at=time.time(),
    )
    storage.raw().put(
        upload_audit_key(record.upload_id), row.model_dump_json().encode(), "application/json"
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


@asset(
    deps=[upload_renditions, image_renditions],
    group_name="catalog",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    automation_condition=AutomationCondition.eager(),
    description="DuckDB table image_metadata: one audit row per processed image, uploads and vendor images alike.",
)
def image_metadata(storage: StorageResource, catalog: CatalogResource) -> MaterializeResult:
    raw = storage.raw()
    rows: list[AuditRow] = []
    for key in raw.list("audit/uploads"):
        rows.append(AuditRow.model_validate_json(raw.get(key)))
    for key in raw.list("audit/vendors"):
        rows.extend(AuditRow.model_validate(r) for r in json.loads(raw.get(key)))
    counts = build_image_metadata(catalog.database, rows)
    return MaterializeResult(
        metadata={
            "rows": len(rows),
            "rows_by_status": MetadataValue.json(counts),
            "database": MetadataValue.path(catalog.database),
        }
    )


assets = [uploaded_images, upload_renditions, image_metadata]
