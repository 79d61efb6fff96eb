"""Stable, safe product ids.

A product id ends up in blob keys, CDN public_ids and CSV rows, so it must be
safe everywhere: lowercase ``[a-z0-9._-]``, no leading dot, bounded length.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urlsplit

MAX_ID_LENGTH = 64
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")


def sanitize_id(raw: str) -> str:
    """Map any string to a safe id; returns ``""`` when nothing usable remains.

    Unicode is folded to ASCII where possible, runs of unsafe characters become
    one ``-``, ``..`` sequences collapse (so no path segment can be ``..``),
    and over-long ids keep a hash suffix so distinct inputs stay distinct.
    """
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("-", text.strip().lower())
    text = _DOTS.sub(".", text).strip(".-_")
    if len(text) > MAX_ID_LENGTH:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        text = text[: MAX_ID_LENGTH - 9].rstrip(".-_") + "-" + digest
    return text


def product_id_for(sku: str | None, url: str | None) -> str:
    """The product id: the sanitized sku when present, else a slug of the product URL.

    Falls back to a hash of the raw values when both sanitize to nothing (an
    all-unicode sku, say), so every product gets an id.
    """
    for candidate in (sku, _url_slug(url)):
        if candidate:
            safe = sanitize_id(str(candidate))
            if safe:
                return safe
    seed = f"{sku or ''}|{url or ''}"
    return "p-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def _url_slug(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    slug = path.rsplit("/", 1)[-1] if path else ""
    for suffix in (".html", ".htm", ".php", ".aspx"):
        if slug.endswith(suffix):
            slug = slug[: -len(suffix)]
    if parts.query:
        slug = f"{slug}-{parts.query}"
    return slug or None
