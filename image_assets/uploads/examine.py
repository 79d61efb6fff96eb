"""Examining one uploaded file: validate by content, name it uniquely.

The unique name is a timestamp plus the content hash (rather than something
random), so re-processing the same upload gives the same name:
``20261122T031500_3fa9c0d1e2.jpg``.
"""

from __future__ import annotations

import hashlib
import time

from image_assets.imaging.decode import ImageRefused, check_complete, oriented_size, probe
from image_assets.layout import upload_original_key, upload_unique_name
from image_assets.records import UploadRecord


def unique_name(modified: float, sha256: str, fmt: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(modified))
    return upload_unique_name(stamp, sha256, fmt)


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
        return UploadRecord(**base, status="rejected", reason=exc.reason, failure=exc.kind)
    sha = hashlib.sha256(data).hexdigest()
    fmt = info.format.lower()
    name = unique_name(modified, sha, fmt)
    width, height = oriented_size(info)
    return UploadRecord(
        **base,
        status="accepted",
        unique_name=name,
        original_key=upload_original_key(name),
        sha256=sha,
        format=fmt,
        width=width,
        height=height,
    )
