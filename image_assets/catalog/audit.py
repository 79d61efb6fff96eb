"""The ``image_metadata`` audit table: one row per processed image, vendor or upload.

Rows are :class:`~image_assets.records.AuditRow`; the table's columns are its
fields, in order. The functions here build rows from the records each step
returns, so the Dagster assets only store them.
"""

from __future__ import annotations

import json
import time
from typing import get_args

import pandas as pd

from image_assets.layout import UPLOAD_AUDIT_PREFIX, VENDOR_AUDIT_PREFIX, vendor_audit_key
from image_assets.records import AuditRow, ImageRecord, ImageRenditions, UploadRecord
from image_assets.storage import BlobStore


def audit_columns() -> tuple[str, ...]:
    return tuple(AuditRow.model_fields)


def _column_dtype(annotation: object) -> str:
    """pandas dtype of a field: the table's column types are fixed by the record, whatever
    the rows hold (a column NULL in every row still gets its type, not DuckDB's NULL)."""
    members = set(get_args(annotation)) or {annotation}
    if int in members:
        return "Int64"
    if float in members:
        return "timestamp"
    return "string"


def audit_frame(rows: list[AuditRow]) -> pd.DataFrame:
    frame = pd.DataFrame([r.model_dump(mode="json") for r in rows], columns=list(audit_columns()))
    for name, field in AuditRow.model_fields.items():
        dtype = _column_dtype(field.annotation)
        if dtype == "timestamp":
            frame[name] = pd.to_datetime(frame[name].astype("Float64"), unit="s", utc=True)
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def vendor_audit_rows(
    manufacturer: str,
    images: list[ImageRecord],
    made: list[ImageRenditions],
    now: float | None = None,
) -> list[AuditRow]:
    """One row per vendor image, whatever became of it (failed downloads included)."""
    by_image = {(r.product_id, r.position): r for r in made}
    processed_at = time.time() if now is None else now
    rows = []
    for image in images:
        result = by_image.get((image.product_id, image.position))
        ok = image.status == "ok" and result is not None and result.status == "ok"
        rows.append(
            AuditRow(
                key=f"{manufacturer}/{image.product_id}/{image.position}",
                source="vendor",
                manufacturer=manufacturer,
                original_name=image.source_url,
                sha256=image.original_sha256,
                bytes=image.original_bytes,
                width=image.width,
                height=image.height,
                format=image.format,
                renditions=len(result.renditions) if result else 0,
                status="processed" if ok else "failed",
                reason=image.reason or (result.reason if result else None),
                failure=image.failure or (result.failure if result else None),
                processed_at=processed_at,
            )
        )
    return rows


def upload_audit_row(
    record: UploadRecord, made: ImageRenditions | None, now: float | None = None
) -> AuditRow:
    """The row of one upload, keyed by its upload id: processed with its renditions, or
    rejected with the reason."""
    failed = made is not None and made.status == "failed"
    return AuditRow(
        key=record.upload_id,
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
        failure=record.failure or (made.failure if failed and made else None),
        received_at=record.received_at,
        processed_at=time.time() if now is None else now,
    )


def save_vendor_audit_rows(raw: BlobStore, manufacturer: str, rows: list[AuditRow]) -> str:
    """Replace one manufacturer's audit rows; return the key written."""
    key = vendor_audit_key(manufacturer)
    payload = json.dumps([r.model_dump(mode="json") for r in rows]).encode()
    raw.put(key, payload, "application/json")
    return key


def load_audit_rows(raw: BlobStore) -> list[AuditRow]:
    """Every audit row in the raw store: uploads and vendor images."""
    rows = [AuditRow.model_validate_json(raw.get(key)) for key in raw.list(UPLOAD_AUDIT_PREFIX)]
    for key in raw.list(VENDOR_AUDIT_PREFIX):
        rows.extend(AuditRow.model_validate(r) for r in json.loads(raw.get(key)))
    return rows
