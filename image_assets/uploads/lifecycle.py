"""The upload lifecycle over blob stores: take in, render, activate, expire.

An upload moves through these states, each written durably before the next
step may rely on it:

- *taken in*: examined by content; accepted ones are kept privately under a
  unique name, rejected ones are moved to the rejected area beside a reason
  file. The upload's manifest (its record and its private files) is written
  before the file leaves the incoming location.
- *processed*: renditions made; the audit row says ``processed`` (or
  ``rejected`` with the reason).
- *activated*: original, master and renditions copied to the public area.
- *expired*: not activated within the TTL; its private files are deleted.

The Dagster shell (``defs/uploads``) only calls these functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from pydantic import BaseModel

from image_assets.catalog.audit import upload_audit_row
from image_assets.imaging.config import RenditionConfig
from image_assets.layout import (
    UPLOAD_AUDIT_PREFIX,
    activated_file_key,
    activated_original_key,
    rejected_reason_key,
    upload_audit_key,
    upload_id_from_audit_key,
    upload_manifest_key,
)
from image_assets.progress import Say
from image_assets.records import AuditRow, ImageRecord, ImageRenditions, UploadRecord
from image_assets.steps.renditions import render_images
from image_assets.storage import BlobNotFound, BlobStore
from image_assets.uploads.examine import examine_upload


class UploadError(ValueError):
    """A lifecycle step cannot be done for this upload; the message is one line for a person."""


@dataclass(frozen=True)
class UploadStores:
    """Where uploads live: incoming and rejected areas, the public area, and the platform's
    raw store (manifests, audit rows) and private image store (originals, renditions)."""

    incoming: BlobStore
    rejected: BlobStore
    public: BlobStore
    raw: BlobStore
    private: BlobStore


class UploadManifest(BaseModel):
    """What the lifecycle knows of one upload: its record and the private files it owns."""

    record: UploadRecord
    renditions: ImageRenditions | None = None

    def private_keys(self) -> list[str]:
        keys = [self.record.original_key] if self.record.original_key else []
        if self.renditions is not None:
            keys += [f.key for f in self.renditions.files()]
        return keys


def load_manifest(raw: BlobStore, upload_id: str) -> UploadManifest | None:
    try:
        return UploadManifest.model_validate_json(raw.get(upload_manifest_key(upload_id)))
    except BlobNotFound:
        return None


def _save_manifest(raw: BlobStore, manifest: UploadManifest) -> None:
    key = upload_manifest_key(manifest.record.upload_id)
    raw.put(key, manifest.model_dump_json().encode(), "application/json")


def load_audit_row(raw: BlobStore, upload_id: str) -> AuditRow | None:
    try:
        return AuditRow.model_validate_json(raw.get(upload_audit_key(upload_id)))
    except BlobNotFound:
        return None


def _save_audit_row(raw: BlobStore, upload_id: str, row: AuditRow) -> None:
    raw.put(upload_audit_key(upload_id), row.model_dump_json().encode(), "application/json")


@dataclass(frozen=True)
class TakenIn:
    record: UploadRecord
    reprocessed: bool  # False when the upload had been taken in before (nothing done now)


def take_in(stores: UploadStores, upload_id: str, object_key: str) -> TakenIn:
    """Examine the incoming file, keep or reject it, and remove it from incoming.

    Idempotent: an upload taken in before (its file gone from incoming) answers
    its recorded outcome. Raises :class:`UploadError` for an upload that is
    neither in incoming nor recorded.
    """
    try:
        info = stores.incoming.info(object_key)
        data = stores.incoming.get(object_key)
    except BlobNotFound:
        previous = load_manifest(stores.raw, upload_id)
        if previous is None:
            raise UploadError(
                f"upload {object_key!r} is not in the incoming location (and was never processed)"
            ) from None
        return TakenIn(previous.record, reprocessed=False)
    record = examine_upload(upload_id, object_key, data, info.modified)
    if record.status == "accepted":
        assert record.original_key
        stores.private.put(record.original_key, data)
    else:
        stores.rejected.put(object_key, data)
        reason = {"reason": record.reason, "failure": record.failure, "at": record.processed_at}
        stores.rejected.put(rejected_reason_key(object_key), json.dumps(reason).encode())
    _save_manifest(stores.raw, UploadManifest(record=record))
    stores.incoming.delete(object_key)  # moved, not copied: incoming only holds new files
    return TakenIn(record, reprocessed=True)


def render_upload(
    stores: UploadStores, record: UploadRecord, config: RenditionConfig, say: Say = print
) -> tuple[ImageRenditions | None, AuditRow]:
    """Make the renditions of an accepted upload and write its audit row (rejected ones
    get their row too)."""
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
        (made,), _ = render_images([image], stores.private, config, workers=1, say=say)
    _save_manifest(stores.raw, UploadManifest(record=record, renditions=made))
    row = upload_audit_row(record, made)
    _save_audit_row(stores.raw, record.upload_id, row)
    return made, row


@dataclass(frozen=True)
class Activation:
    row: AuditRow
    public_keys: list[str]


def activate(stores: UploadStores, upload_id: str, now: float | None = None) -> Activation:
    """Copy a processed upload's original, master and renditions to the public area,
    then delete the private copies. Raises :class:`UploadError` when the upload is
    unknown or not waiting for activation."""
    row = load_audit_row(stores.raw, upload_id)
    manifest = load_manifest(stores.raw, upload_id)
    if row is None or manifest is None or row.status != "processed":
        status = row.status if row else "unknown"
        raise UploadError(f"upload {upload_id!r} is not processed and waiting (status: {status})")
    unique_name = manifest.record.unique_name or upload_id
    public_keys = []
    for key in manifest.private_keys():
        if key == manifest.record.original_key:
            target = activated_original_key(unique_name)
        else:
            target = activated_file_key(unique_name, key.rsplit("/", 1)[-1])
        stores.public.put(target, stores.private.get(key))
        public_keys.append(target)
    for key in manifest.private_keys():
        stores.private.delete(key)
    activated_at = time.time() if now is None else now
    row = row.model_copy(update={"status": "activated", "activated_at": activated_at})
    _save_audit_row(stores.raw, upload_id, row)
    return Activation(row, public_keys)


def expire(stores: UploadStores, ttl_hours: float, now: float | None = None) -> list[AuditRow]:
    """Delete the private files of uploads processed more than ``ttl_hours`` ago and never
    activated; return their rows, now ``expired``."""
    now = time.time() if now is None else now
    cutoff = now - ttl_hours * 3600
    expired = []
    for key in list(stores.raw.list(UPLOAD_AUDIT_PREFIX)):
        row = AuditRow.model_validate_json(stores.raw.get(key))
        if row.status != "processed" or (row.processed_at or 0) > cutoff:
            continue
        upload_id = upload_id_from_audit_key(key)
        manifest = load_manifest(stores.raw, upload_id)
        for private_key in manifest.private_keys() if manifest else []:
            stores.private.delete(private_key)
        row = row.model_copy(update={"status": "expired"})
        _save_audit_row(stores.raw, upload_id, row)
        expired.append(row)
    return expired
