"""The ``image_metadata`` audit table: one row per processed image, vendor or upload."""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel

AUDIT_COLUMNS = (
    "key",
    "source",
    "manufacturer",
    "original_name",
    "sha256",
    "bytes",
    "width",
    "height",
    "format",
    "renditions",
    "status",
    "reason",
    "received_at",
    "processed_at",
    "activated_at",
)


class AuditRow(BaseModel):
    key: str
    source: Literal["vendor", "upload"]
    manufacturer: str | None = None
    original_name: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    renditions: int = 0
    status: str
    reason: str | None = None
    received_at: float | None = None
    processed_at: float | None = None
    activated_at: float | None = None


def audit_frame(rows: list[AuditRow]) -> pd.DataFrame:
    frame = pd.DataFrame([r.model_dump() for r in rows], columns=list(AUDIT_COLUMNS))
    for column in ("received_at", "processed_at", "activated_at"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame
