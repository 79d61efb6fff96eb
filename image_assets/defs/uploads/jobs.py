"""Upload jobs: processing (sensor-triggered), activation, and expiry of unactivated uploads."""

import json
import time

from dagster import (
    AssetSelection,
    Config,
    DefaultScheduleStatus,
    OpExecutionContext,
    ScheduleDefinition,
    define_asset_job,
    job,
    op,
)

from image_assets.catalog.audit import AuditRow
from image_assets.defs.resources import StorageResource
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.storage import BlobNotFound

upload_job = define_asset_job(
    "upload_job",
    selection=AssetSelection.assets("uploaded_images", "upload_renditions"),
    tags={"image_assets/kind": "upload"},
    description="Validate, orient, rename and render one uploaded image; write its audit row.",
)


def _audit(storage: StorageResource, upload_id: str) -> AuditRow | None:
    try:
        return AuditRow.model_validate_json(storage.raw().get(f"audit/uploads/{upload_id}.json"))
    except BlobNotFound:
        return None


def _rendition_keys(storage: StorageResource, upload_id: str) -> list[str]:
    """The private keys of an upload's original and renditions (from its recorded output)."""
    try:
        value = json.loads(storage.raw().get(f"state/assets/upload_renditions/{upload_id}.json"))
    except BlobNotFound:
        return []
    keys = [value["upload"]["original_key"]] if value["upload"].get("original_key") else []
    made = value.get("renditions") or {}
    keys += [f["key"] for f in made.get("renditions", [])]
    if made.get("master"):
        keys.append(made["master"]["key"])
    return keys


class ActivateConfig(Config):
    upload_id: str


@op(description="Move an upload's original and renditions to the public active location.")
def activate_upload(
    context: OpExecutionContext,
    config: ActivateConfig,
    storage: StorageResource,
    uploads: UploadsResource,
) -> None:
    row = _audit(storage, config.upload_id)
    if row is None or row.status != "processed":
        raise ValueError(
            f"upload {config.upload_id!r} is not processed and waiting (status: {row.status if row else 'unknown'})"
        )
    private, public = storage.images(), uploads.public()
    stem = row.key.rsplit(".", 1)[0]
    moved = []
    for key in _rendition_keys(storage, config.upload_id):
        name = key.rsplit("/", 1)[-1]
        target = f"{stem}/{'original.' + name.rsplit('.', 1)[-1] if key.startswith('uploads/originals/') else name}"
        public.put(target, private.get(key))
        moved.append(target)
    for key in _rendition_keys(storage, config.upload_id):
        private.delete(key)
    row = row.model_copy(update={"status": "activated", "activated_at": time.time()})
    storage.raw().put(f"audit/uploads/{config.upload_id}.json", row.model_dump_json().encode())
    context.log.info(f"Activated {row.key}: {len(moved)} files public at {public.uri(stem)}")


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
    raw, private = storage.raw(), storage.images()
    cutoff = time.time() - uploads.ttl_hours * 3600
    expired = 0
    for key in list(raw.list("audit/uploads")):
        row = AuditRow.model_validate_json(raw.get(key))
        if row.status != "processed" or (row.processed_at or 0) > cutoff:
            continue
        upload_id = key.rsplit("/", 1)[-1].removesuffix(".json")
        for private_key in _rendition_keys(storage, upload_id):
            private.delete(private_key)
        raw.put(key, row.model_copy(update={"status": "expired"}).model_dump_json().encode())
        expired += 1
        context.log.info(
            f"Expired {row.key} (processed {(time.time() - (row.processed_at or 0)) / 3600:.1f} h ago)"
        )
    context.log.info(f"{expired} upload(s) expired (TTL {uploads.ttl_hours} h)")


@job(
    description="Delete unactivated uploads past their TTL.",
    tags={"image_assets/kind": "upload-admin"},
)
def expire_uploads_job():
    expire_uploads()


expire_uploads_schedule = ScheduleDefinition(
    job=expire_uploads_job,
    cron_schedule="*/15 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: uploads not activated within the TTL (default 2 hours) are deleted.",
)

jobs = [upload_job, activate_upload_job, expire_uploads_job]
schedules = [expire_uploads_schedule]
