"""The ``image_tags`` table: one row per image with its hashes, colours and labels.

Rows are kept per manufacturer in the raw store (``tags/vendors/{m}.json``) by the
``image_tags`` asset and gathered here into DuckDB, in one transaction, keyed like
``image_metadata`` (``{manufacturer}/{product_id}/{position}``), so one query joins
a product of ``clean_kits`` to its images' labels and colours::

    SELECT k.name, t.position, t.average_colour, t.labels
    FROM clean_kits k JOIN image_tags t
      ON t.manufacturer = k.manufacturer AND t.product_id = k.product_id
"""

from __future__ import annotations

import json
import os

import duckdb
import pandas as pd

from image_assets.catalog.incremental import (
    VENDOR_OR_UPLOAD_OWNER_SQL,
    SyncStats,
    TableSpec,
    sync_table,
    vendor_or_upload_owner,
    vendor_or_upload_rows,
)
from image_assets.layout import TAGS_PREFIX, UPLOAD_TAGS_PREFIX, tags_key, upload_tags_key
from image_assets.records import TagRow
from image_assets.storage import BlobNotFound, BlobStore

_JSON_COLUMNS = ("dominant_colours", "labels")


def save_tag_rows(raw: BlobStore, manufacturer: str, rows: list[TagRow]) -> str:
    """Replace one manufacturer's tag rows; return the key written."""
    key = tags_key(manufacturer)
    raw.put(key, json.dumps([r.model_dump(mode="json") for r in rows]).encode(), "application/json")
    return key


def save_upload_tag_row(raw: BlobStore, row: TagRow) -> str:
    """One upload's tag row (its key is the upload id)."""
    key = upload_tags_key(row.key)
    raw.put(key, row.model_dump_json().encode(), "application/json")
    return key


def load_manufacturer_tag_rows(raw: BlobStore, manufacturer: str) -> dict[str, TagRow]:
    """One manufacturer's rows of the last run, by key (empty before its first)."""
    try:
        data = raw.get(tags_key(manufacturer))
    except BlobNotFound:
        return {}
    rows = (TagRow.model_validate(r) for r in json.loads(data))
    return {row.key: row for row in rows}


def load_tag_rows(raw: BlobStore) -> list[TagRow]:
    """Every tag row: vendor images, then uploads."""
    rows: list[TagRow] = []
    for key in sorted(raw.list(TAGS_PREFIX)):
        rows.extend(TagRow.model_validate(r) for r in json.loads(raw.get(key)))
    rows.extend(
        TagRow.model_validate_json(raw.get(key)) for key in sorted(raw.list(UPLOAD_TAGS_PREFIX))
    )
    return rows


def tags_frame(rows: list[TagRow]) -> pd.DataFrame:
    """Tag rows as a frame, the JSON columns as JSON text."""
    columns = list(TagRow.model_fields)
    frame = pd.DataFrame([r.model_dump(mode="json") for r in rows], columns=columns)
    for name in _JSON_COLUMNS:
        frame[name] = frame[name].map(lambda v: json.dumps(v if v is not None else []))
    frame["position"] = frame["position"].astype("Int64")
    return frame


def _tags_select(source: str) -> str:
    columns = list(TagRow.model_fields)
    selects = ", ".join(f"CAST({c} AS JSON) AS {c}" if c in _JSON_COLUMNS else c for c in columns)
    return f"SELECT {selects} FROM {source}"


def build_image_tags(db_path: str | os.PathLike[str], rows: list[TagRow]) -> dict[str, int]:
    """Replace ``image_tags``; return row counts per status."""
    with duckdb.connect(str(db_path)) as con:
        con.register("tags", tags_frame(rows))
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE OR REPLACE TABLE image_tags AS {_tags_select('tags')} ORDER BY key")
        con.execute("COMMIT")
        counts = dict(con.execute("SELECT status, count(*) FROM image_tags GROUP BY 1").fetchall())
    return {str(k): int(v) for k, v in counts.items()}


IMAGE_TAGS = TableSpec(
    name="image_tags",
    columns=tuple(TagRow.model_fields),
    frame_of=lambda key, data: tags_frame(
        vendor_or_upload_rows(key, data, UPLOAD_TAGS_PREFIX, TagRow)
    ),
    empty=lambda: tags_frame([]),
    select=_tags_select("batch"),
    owner_sql=VENDOR_OR_UPLOAD_OWNER_SQL,
    owner_of=lambda key: vendor_or_upload_owner(key, TAGS_PREFIX, UPLOAD_TAGS_PREFIX),
    order_by="key",
)


def sync_image_tags(
    db_path: str | os.PathLike[str], raw: BlobStore
) -> tuple[SyncStats, dict[str, int]]:
    """``image_tags`` in step with every tag row: (stats, rows per status)."""
    sources = [*raw.list_info(TAGS_PREFIX), *raw.list_info(UPLOAD_TAGS_PREFIX)]
    stats = sync_table(db_path, IMAGE_TAGS, raw, sources)
    with duckdb.connect(str(db_path)) as con:
        counts = con.execute("SELECT status, count(*) FROM image_tags GROUP BY 1").fetchall()
    return stats, {str(k): int(v) for k, v in counts}


def hashed_tag_rows(db_path: str | os.PathLike[str]) -> list[TagRow]:
    """The rows of ``image_tags`` with hashes (what near-duplicate grouping needs), read
    from the table rather than from every source blob."""
    with duckdb.connect(str(db_path)) as con:
        found = con.execute(
            "SELECT key, source, manufacturer, product_id, position, phash, dhash,"
            " average_colour FROM image_tags WHERE status = 'ok' AND phash IS NOT NULL"
            " AND dhash IS NOT NULL ORDER BY key"
        ).fetchall()
    names = ("key", "source", "manufacturer", "product_id", "position", "phash", "dhash")
    return [
        TagRow(**dict(zip(names, row[:7], strict=True)), average_colour=row[7], status="ok")
        for row in found
    ]
