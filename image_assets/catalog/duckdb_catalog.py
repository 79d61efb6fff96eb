"""The clean DuckDB catalog built from every manufacturer's kits CSV.

Only one process may write a DuckDB file, so partitions never touch it: the
unpartitioned ``clean_kits`` and ``image_metadata`` assets rebuild their tables
from the CSVs and audit rows, each in one transaction, under a concurrency
pool of one. A failed build leaves the previous tables intact.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import duckdb
import pandas as pd

from image_assets.catalog.kits_csv import KITS_COLUMNS

CLEAN_KITS_SQL = """
CREATE TABLE clean_kits AS
SELECT
    product_id,
    NULLIF(trim(name), '') AS name,
    manufacturer,
    NULLIF(image, '') AS image,
    CAST(COALESCE(NULLIF(images, ''), '[]') AS JSON) AS images,
    json_array_length(CAST(COALESCE(NULLIF(images, ''), '[]') AS JSON)) AS image_count,
    json_extract_string(CAST(COALESCE(NULLIF(images, ''), '[]') AS JSON), '$[0].secure_url')
        AS "imageSrc",
    TRY_CAST(NULLIF(price, '') AS DOUBLE) AS price,
    NULLIF(currency, '') AS currency,
    NULLIF(url, '') AS url,
    TRY_CAST(NULLIF(images_failed, '') AS INTEGER) AS images_failed,
    NULLIF(blurhash, '') AS blurhash,
    NULLIF(placeholder, '') AS placeholder
FROM kits
ORDER BY manufacturer, product_id
"""


def kits_frame(csvs: dict[str, bytes]) -> pd.DataFrame:
    """All kits CSVs as one string-typed frame (``manufacturer -> csv bytes``)."""
    frames = [
        pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        for _, data in sorted(csvs.items())
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in KITS_COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    for column in KITS_COLUMNS:
        if column not in frame:
            frame[column] = ""
    return frame[list(KITS_COLUMNS)]


def build_catalog(db_path: str | os.PathLike[str], csvs: dict[str, bytes]) -> dict[str, int]:
    """Replace ``clean_kits`` in one transaction; return row counts per manufacturer.

    DuckDB commits atomically (a killed process leaves the previous table), and
    only the assets of the ``duckdb_writer`` pool (limit 1) write this file.
    """
    frame = kits_frame(csvs)
    with _connect(db_path) as con:
        con.register("kits", frame)
        con.execute("BEGIN TRANSACTION")
        con.execute("DROP TABLE IF EXISTS clean_kits")
        con.execute(CLEAN_KITS_SQL)
        con.execute("COMMIT")
        counts = dict(
            con.execute(
                "SELECT manufacturer, count(*) FROM clean_kits GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
    return {str(k): int(v) for k, v in counts.items()}


def build_image_metadata(db_path: str | os.PathLike[str], rows: list) -> dict[str, int]:
    """Replace ``image_metadata`` (audit rows) in one transaction; return counts per status."""
    from image_assets.catalog.audit import audit_frame

    frame = audit_frame(rows)
    with _connect(db_path) as con:
        con.register("audit", frame)
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "CREATE OR REPLACE TABLE image_metadata AS SELECT * FROM audit ORDER BY source, key"
        )
        con.execute("COMMIT")
        counts = dict(
            con.execute("SELECT status, count(*) FROM image_metadata GROUP BY 1").fetchall()
        )
    return {str(k): int(v) for k, v in counts.items()}


def _connect(db_path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path))
