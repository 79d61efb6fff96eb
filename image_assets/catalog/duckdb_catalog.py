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

from image_assets.catalog.audit import audit_frame
from image_assets.catalog.kits_csv import kits_columns, kits_table
from image_assets.records import AuditRow

# How each kits CSV column type becomes a clean, typed DuckDB value.
_CLEAN = {
    "key": "{col}",
    "text": "NULLIF(trim({col}), '')",
    "json_array": "CAST(COALESCE(NULLIF({col}, ''), '[]') AS JSON)",
    "double": "TRY_CAST(NULLIF({col}, '') AS DOUBLE)",
    "integer": "TRY_CAST(NULLIF({col}, '') AS INTEGER)",
}


def clean_kits_sql() -> str:
    """``CREATE TABLE clean_kits``, derived from the kits CSV column table (``kits_table()``):
    every CSV column typed and null-safe, plus the columns derived from them."""
    selects = []
    for column in kits_table():
        value = _CLEAN[column.type].format(col=_quote(column.name))
        selects.append(f"{value} AS {_quote(column.name)}")
        for name, expression in column.derived:
            selects.append(f"{expression.format(value=value)} AS {_quote(name)}")
    columns = ",\n    ".join(selects)
    return f"CREATE TABLE clean_kits AS\nSELECT\n    {columns}\nFROM kits\nORDER BY manufacturer, product_id"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def kits_frame(csvs: dict[str, bytes]) -> pd.DataFrame:
    """All kits CSVs as one string-typed frame (``manufacturer -> csv bytes``)."""
    columns = kits_columns()
    frames = [
        pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        for _, data in sorted(csvs.items())
    ]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=str) for c in columns})
    frame = pd.concat(frames, ignore_index=True)
    for column in columns:
        if column not in frame:
            frame[column] = ""
    return frame[list(columns)]


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
        con.execute(clean_kits_sql())
        con.execute("COMMIT")
        counts = dict(
            con.execute(
                "SELECT manufacturer, count(*) FROM clean_kits GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
    return {str(k): int(v) for k, v in counts.items()}


def build_image_metadata(db_path: str | os.PathLike[str], rows: list[AuditRow]) -> dict[str, int]:
    """Replace ``image_metadata`` (audit rows) in one transaction; return counts per status."""
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


def table_columns(db_path: str | os.PathLike[str], table: str) -> list[tuple[str, str]]:
    """``(name, DuckDB type)`` of each column of ``table``, as the file holds it."""
    with _connect(db_path) as con:
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ?"
            " ORDER BY column_index",
            [table],
        ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def _connect(db_path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path))
