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


def build_image_tags(db_path: str | os.PathLike[str], rows: list[TagRow]) -> dict[str, int]:
    """Replace ``image_tags``; return row counts per status."""
    columns = list(TagRow.model_fields)
    frame = pd.DataFrame([r.model_dump(mode="json") for r in rows], columns=columns)
    for name in _JSON_COLUMNS:
        frame[name] = frame[name].map(lambda v: json.dumps(v if v is not None else []))
    frame["position"] = frame["position"].astype("Int64")
    selects = ", ".join(f"CAST({c} AS JSON) AS {c}" if c in _JSON_COLUMNS else c for c in columns)
    with duckdb.connect(str(db_path)) as con:
        con.register("tags", frame)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            f"CREATE OR REPLACE TABLE image_tags AS SELECT {selects} FROM tags ORDER BY key"
        )
        con.execute("COMMIT")
        counts = dict(con.execute("SELECT status, count(*) FROM image_tags GROUP BY 1").fetchall())
    return {str(k): int(v) for k, v in counts.items()}
