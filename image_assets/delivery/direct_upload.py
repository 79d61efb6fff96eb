"""Direct uploads: short-lived, signed permissions to put one image into ``incoming/``,
so browsers and apps upload without the bytes passing through anything else; the
upload sensor takes the file from there.

- ``aws``: an S3 presigned POST to the uploads bucket's incoming prefix, whose
  policy pins the key, the Content-Type and the size range (S3 refuses anything
  else, and refuses it once the policy has expired).
- ``local``: a signed PUT to the image service
  (``/uploads/incoming/<name>?expires=..&max=..&type=..&sig=..``, an HMAC over
  those values with a key only the server knows); the service checks it, caps
  the body while it streams, and writes the file atomically (a hidden partial
  name, then a rename), so the sensor never sees half a file.

Every grant names a fresh file (``<slug>-<random>.<ext>``): a grant can never
overwrite an upload, and nothing but the incoming area is ever written.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlencode

from image_assets.layout import sanitize_id

ACCEPTED_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/gif": "gif",
    "image/tiff": "tif",
    "image/bmp": "bmp",
}
MAX_BYTES = 50 * 1024 * 1024  # the decode limit: larger files would be rejected anyway
GRANT_SECONDS = 300
# A PUT whose body stops arriving for this long is abandoned (408, its partial file
# removed): a client that stalls half way does not hold a connection and a partial
# file for ever. Slow links still get through: only silence counts.
IDLE_SECONDS = 30


class GrantRefused(ValueError):
    """The request for an upload grant cannot be met; the message says why, in one line."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadGrant:
    """What a client needs to upload one file: where, how, and until when."""

    method: str  # POST (S3 form) or PUT
    url: str
    name: str  # the file's name in incoming/
    expires_at: int
    max_bytes: int
    content_type: str
    fields: dict[str, str] = field(default_factory=dict)  # the S3 form's fields
    headers: dict[str, str] = field(default_factory=dict)  # headers the PUT must carry

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.url,
            "name": self.name,
            "expires_at": self.expires_at,
            "max_bytes": self.max_bytes,
            "content_type": self.content_type,
            "fields": self.fields,
            "headers": self.headers,
        }


def check_request(filename: str, content_type: str, size: int, max_bytes: int) -> str:
    """The incoming name for a file the client says it will send, or :class:`GrantRefused`."""
    if content_type not in ACCEPTED_TYPES:
        raise GrantRefused(
            f"content type {content_type!r} is not accepted ({', '.join(sorted(ACCEPTED_TYPES))})"
        )
    if not isinstance(size, int) or size < 1:
        raise GrantRefused("size must be the file's size in bytes (a positive integer)")
    if size > max_bytes:
        raise GrantRefused(f"{size} bytes is over the {max_bytes}-byte limit", status=413)
    stem = sanitize_id(PurePosixPath(filename.replace("\\", "/")).stem)[:40] or "upload"
    return f"{stem}-{secrets.token_hex(8)}.{ACCEPTED_TYPES[content_type]}"


def s3_grant(
    client: Any,
    bucket: str,
    incoming_prefix: str,
    name: str,
    content_type: str,
    max_bytes: int,
    seconds: int = GRANT_SECONDS,
) -> UploadGrant:
    """A presigned POST whose policy pins this key, this Content-Type and the size."""
    key = f"{incoming_prefix.rstrip('/')}/{name}"
    post = client.generate_presigned_post(
        bucket,
        key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=seconds,
    )
    return UploadGrant(
        method="POST",
        url=post["url"],
        name=name,
        expires_at=int(time.time()) + seconds,
        max_bytes=max_bytes,
        content_type=content_type,
        fields=dict(post["fields"]),
    )


def _put_signature(key: bytes, name: str, expires: int, max_bytes: int, content_type: str) -> str:
    message = f"{name}\n{expires}\n{max_bytes}\n{content_type}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def put_grant(
    key: bytes,
    base_url: str,
    name: str,
    content_type: str,
    max_bytes: int,
    seconds: int = GRANT_SECONDS,
    now: float | None = None,
) -> UploadGrant:
    expires = int(now if now is not None else time.time()) + seconds
    query = urlencode(
        {
            "expires": expires,
            "max": max_bytes,
            "type": content_type,
            "sig": _put_signature(key, name, expires, max_bytes, content_type),
        }
    )
    return UploadGrant(
        method="PUT",
        url=f"{base_url.rstrip('/')}/uploads/incoming/{name}?{query}",
        name=name,
        expires_at=expires,
        max_bytes=max_bytes,
        content_type=content_type,
        headers={"Content-Type": content_type},
    )


def check_put(
    key: bytes, name: str, query: dict[str, str], content_type: str, now: float | None = None
) -> int:
    """The byte limit of a signed PUT, or :class:`GrantRefused` (403: not ours or expired)."""
    try:
        expires, max_bytes = int(query["expires"]), int(query["max"])
        signed_type, signature = query["type"], query["sig"]
    except (KeyError, ValueError):
        raise GrantRefused("not a signed upload URL", status=403) from None
    expected = _put_signature(key, name, expires, max_bytes, signed_type)
    if not hmac.compare_digest(signature, expected):
        raise GrantRefused("upload URL signature does not match", status=403)
    if (now if now is not None else time.time()) > expires:
        raise GrantRefused(
            f"upload URL expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}",
            status=403,
        )
    if content_type.split(";")[0].strip() != signed_type:
        raise GrantRefused(f"Content-Type must be {signed_type}, as granted")
    return max_bytes
