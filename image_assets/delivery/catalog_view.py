"""What the gallery shows, read from the clean DuckDB catalog and the activated uploads.

``clean_kits`` gives each product and its published images (with their rendition
URLs, size and LQIP); ``image_metadata`` says which images failed and why, keyed
``{manufacturer}/{product_id}/{position}``. The catalog is opened read-only for
each read: the platform rebuilds it in a transaction, and while a run holds the
file the last good read is shown instead of an error.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from image_assets.storage import BlobStore


@dataclass(frozen=True)
class ShownImage:
    public_id: str
    url: str  # the master (largest) URL
    width: int
    height: int
    renditions: dict[str, str]  # label (``w800.webp``) -> URL
    lqip: str | None = None  # a data URI
    position: int = 1


@dataclass(frozen=True)
class FailedImage:
    position: int
    status: str  # failed, rejected
    reason: str


@dataclass(frozen=True)
class ShownProduct:
    product_id: str
    name: str
    manufacturer: str
    price: float | None
    currency: str | None
    url: str | None
    images: list[ShownImage]
    failed: list[FailedImage] = field(default_factory=list)


@dataclass(frozen=True)
class Catalog:
    products: list[ShownProduct]
    read_at: float
    stale: bool = False  # the catalog was busy: this is the last good read
    missing: bool = False  # no catalog yet (nothing materialized)

    def manufacturers(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for product in self.products:
            counts[product.manufacturer] = counts.get(product.manufacturer, 0) + 1
        return sorted(counts.items())

    def find(self, manufacturer: str, product_id: str) -> ShownProduct | None:
        return next(
            (
                p
                for p in self.products
                if p.manufacturer == manufacturer and p.product_id == product_id
            ),
            None,
        )


_PRODUCTS = """
SELECT product_id, name, manufacturer, price, currency, url, CAST(images AS VARCHAR)
FROM clean_kits ORDER BY manufacturer, name, product_id
"""
_FAILURES = """
SELECT key, status, coalesce(reason, status) FROM image_metadata
WHERE source = 'vendor' AND status IN ('failed', 'rejected')
"""


def read_catalog(db_path: Path) -> Catalog:
    """Every product of ``clean_kits`` with its images and failed images (read-only)."""
    if not db_path.exists():
        return Catalog([], time.time(), missing=True)
    import duckdb  # here, not at the top: only the gallery reads the catalog (23 MB per worker)

    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = {
            row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "clean_kits" not in tables:
            return Catalog([], time.time(), missing=True)
        rows = con.execute(_PRODUCTS).fetchall()
        failures = con.execute(_FAILURES).fetchall() if "image_metadata" in tables else []
    failed: dict[tuple[str, str], list[FailedImage]] = {}
    for key, status, reason in failures:
        manufacturer, _, rest = str(key).partition("/")
        product_id, _, position = rest.rpartition("/")
        failed.setdefault((manufacturer, product_id), []).append(
            FailedImage(int(position) if position.isdigit() else 0, str(status), str(reason))
        )
    products = []
    for product_id, name, manufacturer, price, currency, url, images in rows:
        shown = [_image(entry, index + 1) for index, entry in enumerate(json.loads(images or "[]"))]
        products.append(
            ShownProduct(
                product_id=product_id,
                name=name or product_id,
                manufacturer=manufacturer,
                price=price,
                currency=currency,
                url=url,
                images=[image for image in shown if image is not None],
                failed=sorted(failed.get((manufacturer, product_id), []), key=lambda f: f.position),
            )
        )
    return Catalog(products, time.time())


def _image(entry: dict, position: int) -> ShownImage | None:
    url = entry.get("secure_url") or entry.get("url")
    if not url or not entry.get("width") or not entry.get("height"):
        return None
    return ShownImage(
        public_id=str(entry.get("public_id", "")),
        url=str(url),
        width=int(entry["width"]),
        height=int(entry["height"]),
        renditions={str(k): str(v) for k, v in (entry.get("renditions") or {}).items()},
        lqip=entry.get("lqip"),
        position=position,
    )


class CatalogReader:
    """Reads the catalog at most every ``max_age`` seconds; a busy or half-written
    catalog (a run holding the file) gives the last good read, marked stale."""

    def __init__(self, db_path: Path, max_age: float = 2.0):
        self.db_path = db_path
        self.max_age = max_age
        self._last: Catalog | None = None
        self._lock = threading.Lock()

    def get(self) -> Catalog:
        with self._lock:
            if self._last is not None and time.time() - self._last.read_at < self.max_age:
                return self._last
            import duckdb

            try:
                self._last = read_catalog(self.db_path)
            except duckdb.Error:
                if self._last is None:
                    return Catalog([], time.time(), stale=True)
                self._last = Catalog(self._last.products, time.time(), stale=True)
            return self._last


def activated_uploads(store: BlobStore | None, limit: int = 48) -> list[str]:
    """The public ids (``uploads/<stem>``) of the newest activated uploads with a master."""
    if store is None:
        return []
    stems = sorted(
        {
            key.split("/", 1)[0]
            for key in store.list("")
            if key.endswith(("/master.jpg", "/master.png"))
        },
        reverse=True,  # names start with their UTC timestamp: newest first
    )
    return [f"uploads/{stem}" for stem in stems[:limit]]
