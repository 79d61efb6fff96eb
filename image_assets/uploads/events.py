"""S3 event notifications (as delivered to SQS) to object keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    etag: str
    sequencer: str


def parse_s3_event(body: str) -> list[ObjectCreated]:
    """Created objects of one message; ``s3:TestEvent`` and other events give nothing.

    Keys arrive URL-encoded with ``+`` for spaces, as S3 sends them.
    """
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return []
    if not isinstance(data, dict) or data.get("Event") == "s3:TestEvent":
        return []
    created = []
    for record in data.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        if "key" not in obj:
            continue
        created.append(
            ObjectCreated(
                bucket=(s3.get("bucket") or {}).get("name", ""),
                key=unquote_plus(obj["key"]),
                etag=str(obj.get("eTag", "")),
                sequencer=str(obj.get("sequencer", "")),
            )
        )
    return created
