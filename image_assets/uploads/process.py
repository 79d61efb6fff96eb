"""Accepting one uploaded file: validate by content, name it uniquely, keep it private.

The unique name follows c2corg's idea (a timestamp plus something random) but
uses the content hash instead of randomness, so re-processing the same upload
gives the same name: ``20261122T031500_3fa9c0d1e2.jpg``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Literal

from pydantic import BaseModel

from image_assets.imaging.decode import ImageRefused, check_complete, oriented_size, probe
from image_assets.imaging.renditions import EXTENSIONS


class UploadRecord(BaseModel):
    upload_id: str
    object_key: str
    original_name: str
    status: Literal["accepted", "rejected", "activated", "expired"]
    reason: str | None = None
    unique_name: str | None = None
    original_key: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    received_at: float | None = None
    processed_at: float | None = None
    activated_at: float | None = None


def unique_name(modified: float, sha256: str, fmt: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(modified))
    return f"{stamp}_{sha256[:10]}.{EXTENSIONS.get(fmt, fmt)}"


def examine_upload(upload_id: str, object_key: str, data: bytes, modified: float) -> UploadRecord:
    """Validate ``data`` by content; the record says accepted (with its facts) or rejected (why)."""
    base = {
        "upload_id": upload_id,
        "object_key": object_key,
        "original_name": object_key.rsplit("/", 1)[-1],
        "received_at": modified,
        "processed_at": time.time(),
        "bytes": len(data),
    }
    try:
        info = probe(data)
        check_complete(data, info)
    except ImageRefused as exc:
        return UploadRecord(**base, status="rejected", reason=exc.reason)
    sha = hashlib.sha256(data).hexdigest()
    fmt = info.format.lower()
    name = unique_name(modified, sha, fmt)
    width, height = oriented_size(info)
    return UploadRecord(
        **base,
        status="accepted",
        unique_name=name,
        original_key=f"uploads/originals/{name}",
        sha256=sha,
        format=fmt,
        width=width,
        height=height,
    )
