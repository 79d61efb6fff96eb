"""The kits CSV contract: the one table that knows its columns, their cells and their types.

``kits/{manufacturer}_kits.csv``: ``product_id,name,manufacturer,image,images``
first (the website depends on these), then extra columns (price, currency,
url, images_failed, and the primary image's ``blurhash`` and ``placeholder``,
an LQIP data URI). ``image`` is the primary image's public_id (empty when
none); ``images`` is a JSON array with one object per published image.

:data:`KITS_TABLE` defines each column once: how its cell is made from a
product and its published images, and what type it has in the clean DuckDB
table. The CSV writer, the contract check and ``clean_kits`` all derive from
it, so adding a column is one line here. Output is deterministic (sorted rows,
sorted JSON keys, ``\\n`` line ends) so an unchanged catalog gives
byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from image_assets.formats import PUBLISHED_FORMATS
from image_assets.layout import rendition_label
from image_assets.records import Product, PublishedImage

ColumnType = Literal["key", "text", "json_array", "double", "integer"]
# What each column type holds in the CSV, as the Dagster UI lists columns.
CSV_TYPES: dict[str, str] = {
    "key": "string (key)",
    "text": "string",
    "json_array": "JSON array",
    "double": "decimal",
    "integer": "integer",
}


@dataclass(frozen=True)
class ProductFacts:
    """What a row is made from: one product and its images as the CSV shows them."""

    product: Product
    images: list[dict]  # the ``images`` JSON objects, in position order


@dataclass(frozen=True)
class KitsColumn:
    """One CSV column: its name, its type in ``clean_kits``, how its cell is made, and
    columns ``clean_kits`` derives from it (name -> SQL over the typed value ``{value}``)."""

    name: str
    type: ColumnType
    cell: Callable[[ProductFacts], str]
    derived: tuple[tuple[str, str], ...] = ()


def _images_json(facts: ProductFacts) -> str:
    return json.dumps(facts.images, sort_keys=True, separators=(",", ":"))


def _primary(field: str) -> Callable[[ProductFacts], str]:
    return lambda facts: str(facts.images[0].get(field, "")) if facts.images else ""


KITS_TABLE: tuple[KitsColumn, ...] = (
    KitsColumn("product_id", "key", lambda f: f.product.product_id),
    KitsColumn("name", "text", lambda f: f.product.name or ""),
    KitsColumn("manufacturer", "key", lambda f: f.product.manufacturer),
    KitsColumn("image", "text", _primary("public_id")),
    KitsColumn(
        "images",
        "json_array",
        _images_json,
        derived=(
            ("image_count", "json_array_length({value})"),
            ("imageSrc", "json_extract_string({value}, '$[0].secure_url')"),
        ),
    ),
    KitsColumn(
        "price", "double", lambda f: "" if f.product.price is None else f"{f.product.price:.2f}"
    ),
    KitsColumn("currency", "text", lambda f: f.product.currency or ""),
    KitsColumn("url", "text", lambda f: f.product.url or ""),
    KitsColumn(
        "images_failed", "integer", lambda f: str(len(f.product.image_urls) - len(f.images))
    ),
    KitsColumn("blurhash", "text", _primary("blurhash")),
    KitsColumn("placeholder", "text", _primary("lqip")),
)
CONTRACT_COLUMNS = ("product_id", "name", "manufacturer", "image", "images")
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


def kits_table() -> tuple[KitsColumn, ...]:
    """The column table (read at call time, so every consumer sees the same one)."""
    return KITS_TABLE


def kits_columns() -> tuple[str, ...]:
    """The CSV's columns, in order."""
    return tuple(column.name for column in kits_table())


assert kits_columns()[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS, "contract columns come first"


def image_entry(published: PublishedImage) -> dict:
    """The ``images`` JSON object of one published image."""
    assert published.asset is not None
    asset = published.asset
    entry = {name: getattr(asset, name) for name in IMAGE_FIELDS}
    if asset.storage == "s3":
        entry["s3_url"] = asset.s3_url or asset.url
    if published.renditions:
        entry["renditions"] = dict(sorted(published.renditions.items()))
    if published.blurhash:
        entry["blurhash"] = published.blurhash
    if published.lqip:
        entry["lqip"] = published.lqip
    return entry


def build_rows(products: Iterable[Product], published: Iterable[PublishedImage]) -> list[dict]:
    """One row per product (products without images kept), sorted by product_id."""
    by_product: dict[str, list[PublishedImage]] = defaultdict(list)
    for image in published:
        by_product[image.product_id].append(image)
    rows = []
    for product in sorted(products, key=lambda p: p.product_id):
        images = sorted(by_product.get(product.product_id, []), key=lambda i: i.position)
        entries = [image_entry(i) for i in images if i.status != "failed" and i.asset is not None]
        facts = ProductFacts(product, entries)
        rows.append({column.name: column.cell(facts) for column in kits_table()})
    return rows


def render_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=kits_columns(), lineterminator="\n")
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


def published_ids(data: bytes) -> dict[str, str]:
    """Product URL -> product id of a published kits CSV (an unreadable CSV gives none),
    so a product keeps its public id when the rule that makes ids changes."""
    try:
        rows = parse_csv(data)
    except (KitsCsvError, UnicodeDecodeError, csv.Error):
        return {}
    return {row["url"]: row["product_id"] for row in rows if row.get("url") and row["product_id"]}


def preview_markdown(
    rows: list[dict], published: list[PublishedImage], thumbnail: str, limit: int = 25
) -> str:
    """A markdown table of the first products for the UI: the thumbnail shown as an
    image (when it is served over HTTP, which the UI can load), the vendor page as a
    link, and each image's status by position (``image 2: HTTP 404``).

    ``thumbnail`` names the rendition shown (the rendition config's ``preview``).
    """
    failed: dict[str, list[str]] = defaultdict(list)
    for image in sorted(published, key=lambda p: p.position):
        if image.status == "failed":
            failed[image.product_id].append(
                f"image {image.position}: {_short(image.reason or 'failed')}"
            )
    labels = [rendition_label(thumbnail, fmt) for fmt in PUBLISHED_FORMATS]
    lines = ["| product | name | page | thumbnail | images |", "|---|---|---|---|---|"]
    for row in rows[:limit]:
        images = json.loads(row["images"])
        thumb = ""
        if images:
            renditions = images[0].get("renditions") or {}
            url = next((renditions[k] for k in labels if k in renditions), images[0]["secure_url"])
            thumb = f"![{row['product_id']}]({url})" if _web(url) else f"`{_short(url)}`"
        page = f"[page]({row['url']})" if row["url"] and _web(row["url"]) else ""
        problems = failed.get(row["product_id"], [])
        status = ", ".join([f"{len(images)} ok"] * bool(images) + problems) or "no image"
        name = _short(row["name"]) or "(no name)"
        lines.append(f"| {row['product_id']} | {name} | {page} | {thumb} | {status} |")
    if len(rows) > limit:
        lines.append(f"| ... | {len(rows) - limit} more | | | |")
    return "\n".join(lines)


def _web(url: str) -> bool:
    """Whether the Dagster UI can open ``url`` (it blanks file: and other schemes)."""
    return url.startswith(("http://", "https://")) and not any(c in url for c in " ()<>")


def _short(text: str, width: int = 60) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def contract_problems(data: bytes) -> str | None:
    """Why ``data`` breaks the kits CSV contract (exact columns, JSON images), or None."""
    try:
        header = tuple(data.split(b"\n", 1)[0].decode("utf-8").split(","))
        parse_csv(data)
    except (KitsCsvError, UnicodeDecodeError) as exc:
        return str(exc)
    if header != kits_columns():
        return f"columns {header} differ from {kits_columns()}"
    return None
