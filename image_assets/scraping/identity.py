"""Stable, safe product ids from what a vendor's catalog says about a product.

A product id ends up in blob keys, CDN public_ids and CSV rows, so it is made
safe by :func:`image_assets.layout.sanitize_id` (lowercase ``[a-z0-9._-]``, no
leading dot, bounded length).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from image_assets.layout import sanitize_id


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
