"""Stable, safe product ids from what a vendor's catalog says about a product.

A product id ends up in blob keys, CDN public_ids and CSV rows, so it is made
safe by :func:`image_assets.layout.sanitize_id` (lowercase ``[a-z0-9._-]``, no
leading dot, bounded length).

The order of preference is the catalog's own identifiers first: the product's
**sku** (or mpn/gtin in structured data), then the **platform's product id**
(Shopify's and WooCommerce's numeric ``id``, which survives a renamed handle),
then a **slug of the text** of the product's URL (percent-escapes decoded, letters
transliterated: ``little-dog-über`` -> ``little-dog-uber``), then a hash.

Ids once published never move: :func:`keep_published_ids` maps a product back to
the id it was published under (by its canonical URL) when the rule that made it
has changed since, so a CDN public id stays where it is.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from anyascii import anyascii

from image_assets.layout import sanitize_id
from image_assets.records import Product

_PAGE_SUFFIXES = (".html", ".htm", ".php", ".aspx")


def slug_text(text: str) -> str:
    """A safe id from human text: letters and digits transliterated to ASCII
    (``ß`` -> ``ss``, ``ロケット`` -> ``roketto``), symbols and emoji dropped."""
    parts = []
    for char in unicodedata.normalize("NFC", text):
        if char.isascii():
            parts.append(char)
        elif unicodedata.category(char)[0] in "LN":  # letters and numbers, in any script
            parts.append(anyascii(char))
        else:
            parts.append(" ")
    return sanitize_id("".join(parts))


def product_id_for(sku: str | None, url: str | None, platform_id: str | int | None = None) -> str:
    """The product id: sku, else the platform's id, else a slug of the URL's text, else a hash.

    Falls back to a hash of the raw values when all of them slug to nothing, so every
    product gets an id.
    """
    for candidate in (sku, platform_id, url_slug(url)):
        if candidate not in (None, ""):
            safe = slug_text(str(candidate))
            if safe:
                return safe
    seed = f"{sku or ''}|{unquote(url or '')}|{platform_id or ''}"  # escapes are not identity
    return "p-" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def url_slug(url: str | None) -> str | None:
    """The last path segment of a product URL (plus its query), as text: escapes decoded."""
    if not url:
        return None
    parts = urlsplit(url)
    path = unquote(parts.path).rstrip("/")
    slug = path.rsplit("/", 1)[-1] if path else ""
    for suffix in _PAGE_SUFFIXES:
        if slug.endswith(suffix):
            slug = slug[: -len(suffix)]
    if parts.query:
        slug = f"{slug}-{unquote(parts.query)}"
    return slug or None


def keep_published_ids(products: Iterable[Product], published: Mapping[str, str]) -> list[Product]:
    """Products with the id each was published under before, found by canonical URL.

    ``published`` maps product URL -> product id from the vendor's last kits CSV. A
    product whose URL was published under another id keeps that id, unless another
    product of this run already has it (two products never share an id).
    """
    products = list(products)
    taken = {p.product_id for p in products}
    kept = []
    for product in products:
        earlier = published.get(product.url or "")
        if earlier and earlier != product.product_id and earlier not in taken:
            taken.discard(product.product_id)
            taken.add(earlier)
            product = product.model_copy(update={"product_id": earlier})
        kept.append(product)
    return kept
