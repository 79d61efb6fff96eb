"""The clean DuckDB catalog built from every manufacturer's kits CSV.

Only one process may write a DuckDB file, so partitions never touch it: the
unpartitioned ``clean_kits`` and ``image_metadata`` assets rebuild their tables
from the CSVs and audit rows, each in one transaction, under a concurrency
pool of one. A failed build leaves the previous tables intact.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pandas as pd

from image_assets.catalog.audit import audit_columns, audit_frame
from image_assets.catalog.incremental import (
    VENDOR_OR_UPLOAD_OWNER_SQL,
    SyncStats,
    TableSpec,
    sync_table,
    vendor_or_upload_owner,
    vendor_or_upload_rows,
)
from image_assets.catalog.kits_csv import kits_columns, kits_table
from image_assets.layout import (
    KITS_CSV_FOLDER,
    KITS_CSV_SUFFIX,
    UPLOAD_AUDIT_PREFIX,
    VENDOR_AUDIT_PREFIX,
    kits_csv_key,
)
from image_assets.records import AuditRow
from image_assets.storage import BlobStore

# How each kits CSV column type becomes a clean, typed DuckDB value.
_CLEAN = {
    "key": "{col}",
    "text": "NULLIF(trim({col}), '')",
    "json_array": "CAST(COALESCE(NULLIF({col}, ''), '[]') AS JSON)",
    "double": "TRY_CAST(NULLIF({col}, '') AS DOUBLE)",
    "integer": "TRY_CAST(NULLIF({col}, '') AS INTEGER)",
}


def clean_kits_select(source: str = "kits") -> str:
    """The ``SELECT`` of ``clean_kits`` rows from a frame of kits CSV rows, derived from the
    kits CSV column table (``kits_table()``): every CSV column typed and null-safe, plus
    the columns derived from them."""
    selects = []
    for column in kits_table():
        value = _CLEAN[column.type].format(col=_quote(column.name))
        selects.append(f"{value} AS {_quote(column.name)}")
        for name, expression in column.derived:
            selects.append(f"{expression.format(value=value)} AS {_quote(name)}")
    columns = ",\n    ".join(selects)
    return f"SELECT\n    {columns}\nFROM {source}"


def clean_kits_sql() -> str:
    """``CREATE TABLE clean_kits`` from the registered frame ``kits``."""
    return f"CREATE TABLE clean_kits AS\n{clean_kits_select()}\nORDER BY manufacturer, product_id"


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


# ------------------------------------------------------------ kept in step, source by source


def _kits_owner(key: str) -> str:
    return key.removeprefix(KITS_CSV_FOLDER).removesuffix(KITS_CSV_SUFFIX)


def _kits_rows(key: str, data: bytes) -> pd.DataFrame:
    manufacturer = _kits_owner(key)
    frame = kits_frame({manufacturer: data})
    others = sorted(set(frame["manufacturer"]) - {manufacturer})
    if others:  # its rows would not be replaced with the file's next version
        raise ValueError(f"{key} holds rows of other manufacturers: {', '.join(others[:5])}")
    return frame


CLEAN_KITS = TableSpec(
    name="clean_kits",
    columns=kits_columns(),
    frame_of=_kits_rows,
    empty=lambda: kits_frame({}),
    select=clean_kits_select("batch"),
    owner_sql="manufacturer",
    owner_of=_kits_owner,
    order_by="manufacturer, product_id",
)


def sync_clean_kits(
    db_path: str | os.PathLike[str], raw: BlobStore, manufacturers: Iterable[str]
) -> tuple[SyncStats, dict[str, int], list[str]]:
    """``clean_kits`` in step with the kits CSVs of ``manufacturers`` (a manufacturer no
    longer listed loses its rows): (stats, rows per manufacturer, manufacturers with no
    CSV yet)."""
    wanted = {kits_csv_key(m): m for m in manufacturers}
    sources = [info for info in raw.list_info(KITS_CSV_FOLDER) if info.key in wanted]
    found = {info.key for info in sources}
    missing = sorted(m for key, m in wanted.items() if key not in found)
    stats = sync_table(db_path, CLEAN_KITS, raw, sources)
    return stats, _counts(db_path, "clean_kits", "manufacturer"), missing


IMAGE_METADATA = TableSpec(
    name="image_metadata",
    columns=audit_columns(),
    frame_of=lambda key, data: audit_frame(
        vendor_or_upload_rows(key, data, UPLOAD_AUDIT_PREFIX, AuditRow)
    ),
    empty=lambda: audit_frame([]),
    select="SELECT * FROM batch",
    owner_sql=VENDOR_OR_UPLOAD_OWNER_SQL,
    owner_of=lambda key: vendor_or_upload_owner(key, VENDOR_AUDIT_PREFIX, UPLOAD_AUDIT_PREFIX),
    order_by="source, key",
)


def sync_image_metadata(
    db_path: str | os.PathLike[str], raw: BlobStore
) -> tuple[SyncStats, dict[str, int]]:
    """``image_metadata`` in step with every audit row: (stats, rows per status)."""
    sources = [*raw.list_info(UPLOAD_AUDIT_PREFIX), *raw.list_info(VENDOR_AUDIT_PREFIX)]
    stats = sync_table(db_path, IMAGE_METADATA, raw, sources)
    return stats, _counts(db_path, "image_metadata", "status")


def _counts(db_path: str | os.PathLike[str], table: str, column: str) -> dict[str, int]:
    with _connect(db_path) as con:
        rows = con.execute(
            f"SELECT {_quote(column)}, count(*) FROM {table} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return {str(k): int(v) for k, v in rows}
