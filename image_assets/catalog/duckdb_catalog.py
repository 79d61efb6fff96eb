"""The clean DuckDB catalog built from every manufacturer's kits CSV.

Only one process may write a DuckDB file, so partitions never touch it: the
single unpartitioned ``clean_kits`` asset rebuilds it from the CSVs into a
temporary file and renames it into place, so readers never see half a table
and a failed build leaves the previous catalog intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
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
    import io

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
    """Rebuild ``clean_kits`` at ``db_path`` atomically; return row counts per manufacturer."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = kits_frame(csvs)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".duckdb", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # duckdb wants to create the file itself
    try:
        with duckdb.connect(tmp) as con:
            con.register("kits", frame)
            con.execute(CLEAN_KITS_SQL)
            counts = dict(
                con.execute(
                    "SELECT manufacturer, count(*) FROM clean_kits GROUP BY 1 ORDER BY 1"
                ).fetchall()
            )
            con.execute("CHECKPOINT")
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".wal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return {str(k): int(v) for k, v in counts.items()}
