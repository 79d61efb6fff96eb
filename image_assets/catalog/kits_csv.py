"""The kits CSV contract: the one place that knows its columns and cell formats.

``kits/{manufacturer}_kits.csv``: ``product_id,name,manufacturer,image,images``
first (the website depends on these), then extra columns (price, currency,
url, images_failed, and the primary image's ``blurhash`` and ``placeholder``,
an LQIP data URI). ``image`` is the
primary image's public_id (empty when none); ``images`` is a JSON array with
one object per uploaded image. Output is deterministic (sorted rows, sorted
JSON keys, ``\\n`` line ends) so an unchanged catalog gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable

from image_assets.catalog.records import ImageUpload, Product

CONTRACT_COLUMNS = ("product_id", "name", "manufacturer", "image", "images")
EXTRA_COLUMNS = ("price", "currency", "url", "images_failed", "blurhash", "placeholder")
KITS_COLUMNS = CONTRACT_COLUMNS + EXTRA_COLUMNS
IMAGE_FIELDS = (
    "public_id",
    "storage",
    "url",
    "secure_url",
    "width",
    "height",
    "format",
    "bytes",
    "sha256",
)


def kits_csv_key(manufacturer: str) -> str:
    return f"kits/{manufacturer}_kits.csv"


def image_entry(upload: ImageUpload) -> dict:
    """The ``images`` JSON object of one uploaded image."""
    assert upload.asset is not None
    asset = upload.asset
    entry = {name: getattr(asset, name) for name in IMAGE_FIELDS}
    if asset.storage == "s3":
        entry["s3_url"] = asset.s3_url or asset.url
    if upload.renditions:
        entry["renditions"] = dict(sorted(upload.renditions.items()))
    if upload.blurhash:
        entry["blurhash"] = upload.blurhash
    if upload.lqip:
        entry["lqip"] = upload.lqip
    return entry


def build_rows(products: Iterable[Product], uploads: Iterable[ImageUpload]) -> list[dict]:
    """One row per product (products without images kept), sorted by product_id."""
    by_product: dict[str, list[ImageUpload]] = defaultdict(list)
    for upload in uploads:
        by_product[upload.product_id].append(upload)
    rows = []
    for product in sorted(products, key=lambda p: p.product_id):
        ups = sorted(by_product.get(product.product_id, []), key=lambda u: u.position)
        ok = [u for u in ups if u.status != "failed" and u.asset is not None]
        entries = [image_entry(u) for u in ok]
        rows.append(
            {
                "product_id": product.product_id,
                "name": product.name or "",
                "manufacturer": product.manufacturer,
                "image": entries[0]["public_id"] if entries else "",
                "images": json.dumps(entries, sort_keys=True, separators=(",", ":")),
                "price": "" if product.price is None else f"{product.price:.2f}",
                "currency": product.currency or "",
                "url": product.url or "",
                "images_failed": str(len(product.image_urls) - len(ok)),
                "blurhash": entries[0].get("blurhash", "") if entries else "",
                "placeholder": entries[0].get("lqip", "") if entries else "",
            }
        )
    return rows


def render_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=KITS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


class KitsCsvError(ValueError):
    pass


def parse_csv(data: bytes) -> list[dict]:
    """Parse and validate a kits CSV: contract columns first, every ``images`` cell a JSON array."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    header = tuple(reader.fieldnames or ())
    if header[: len(CONTRACT_COLUMNS)] != CONTRACT_COLUMNS:
        raise KitsCsvError(f"columns {header} do not start with {CONTRACT_COLUMNS}")
    rows = list(reader)
    for line, row in enumerate(rows, start=2):
        try:
            images = json.loads(row["images"] or "[]")
        except json.JSONDecodeError as exc:
            raise KitsCsvError(f"line {line}: images is not JSON: {exc.msg}") from None
        if not isinstance(images, list):
            raise KitsCsvError(f"line {line}: images is not a JSON array")
    return rows


def preview_markdown(rows: list[dict], uploads: list[ImageUpload], limit: int = 25) -> str:
    """A markdown table of the first products (name, link, thumbnail, status) for the UI."""
    failed: dict[str, list[str]] = defaultdict(list)
    for upload in uploads:
        if upload.status == "failed":
            failed[upload.product_id].append((upload.reason or "failed").split(":", 1)[0])
    lines = ["| product | name | page | thumbnail | status |", "|---|---|---|---|---|"]
    for row in rows[:limit]:
        images = json.loads(row["images"])
        thumb = ""
        if images:
            renditions = images[0].get("renditions") or {}
            url = (
                renditions.get("thumb_300.webp")
                or renditions.get("thumb_300.jpeg")
                or images[0]["secure_url"]
            )
            thumb = f"[thumbnail]({url})"
        page = f"[page]({row['url']})" if row["url"] else ""
        problems = failed.get(row["product_id"], [])
        status = "ok" if images and not problems else ", ".join(problems) or "no image"
        name = row["name"].replace("|", "\\|") or "(no name)"
        lines.append(f"| {row['product_id']} | {name} | {page} | {thumb} | {status} |")
    if len(rows) > limit:
        lines.append(f"| ... | {len(rows) - limit} more | | | |")
    return "\n".join(lines)


def contract_problems(data: bytes) -> str | None:
    """Why ``data`` breaks the kits CSV contract (exact columns, JSON images), or None."""
    try:
        header = tuple(data.split(b"\n", 1)[0].decode("utf-8").split(","))
        parse_csv(data)
    except (KitsCsvError, UnicodeDecodeError) as exc:
        return str(exc)
    if header != KITS_COLUMNS:
        return f"columns {header} differ from {KITS_COLUMNS}"
    return None
