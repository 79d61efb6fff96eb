"""Catalog tables kept in step with their source blobs, one source at a time.

Each catalog table is made of source blobs: one kits CSV per manufacturer, one audit
or tag list per manufacturer, one audit or tag row per upload. Rebuilding a table from
every source on every run costs what the whole history costs: 100,000 uploads are
100,000 reads and parses for each new upload. Instead the file keeps, per table, what
each source was when it was last read (``catalog_sources``: last-modified, size,
sha256), and a build:

- lists the sources with their last-modified time and size (one listing, no reads);
- reads only the sources that are new, whose time or size moved, or that are *racy*
  (modified so close to the last build that a change in the same clock tick could
  hide; the same rule git applies to its index);
- of those, parses only the ones whose bytes changed (sha256);
- replaces the rows of changed and vanished sources, in one transaction.

A table that is missing, or whose shape (its SQL and columns) changed with the code,
is rebuilt from every source; so is a file built before this ledger existed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
from pydantic import BaseModel

from image_assets.storage import BlobNotFound, BlobStore
from image_assets.storage.base import ObjectInfo

# A source modified less than this before the last build started is read again: the
# store's clock (S3's LastModified has one-second steps) may differ from ours.
RACY_SECONDS = 60.0

M = TypeVar("M", bound=BaseModel)


# The owner of a row in a table over vendor lists and upload rows (image_metadata,
# image_tags): a vendor's list is owned by its manufacturer, an upload's row by its key.
VENDOR_OR_UPLOAD_OWNER_SQL = (
    "CASE WHEN source = 'vendor' THEN 'vendor:' || manufacturer ELSE 'upload:' || key END"
)


def vendor_or_upload_owner(key: str, vendor_prefix: str, upload_prefix: str) -> str:
    """The owner (as :data:`VENDOR_OR_UPLOAD_OWNER_SQL` computes it) of a source kept at
    ``{vendor_prefix}/{manufacturer}.json`` or ``{upload_prefix}/{upload_id}.json``."""
    if key.startswith(upload_prefix + "/"):
        return "upload:" + key.removeprefix(upload_prefix + "/").removesuffix(".json")
    return "vendor:" + key.removeprefix(vendor_prefix + "/").removesuffix(".json")


def vendor_or_upload_rows(key: str, data: bytes, upload_prefix: str, model: type[M]) -> list[M]:
    """The records of such a source: one JSON object for an upload, a list for a vendor."""
    if key.startswith(upload_prefix + "/"):
        return [model.model_validate_json(data)]
    return [model.model_validate(r) for r in json.loads(data)]


@dataclass(frozen=True)
class TableSpec:
    """How one table is made from its sources.

    ``frame_of(key, data)``: the rows one source holds, as a frame of ``columns``
    (``empty()``: the same with no rows, typed, for a table with no sources yet);
    ``select``: the SQL that turns the registered frame ``batch`` into table rows;
    ``owner_sql`` / ``owner_of``: the same owner id computed from a table row (SQL) and
    from a source key (Python), so a source's rows can be deleted when it changes.
    """

    name: str
    columns: tuple[str, ...]
    frame_of: Callable[[str, bytes], pd.DataFrame]
    empty: Callable[[], pd.DataFrame]
    select: str
    owner_sql: str
    owner_of: Callable[[str], str]
    order_by: str

    @property
    def shape(self) -> str:
        """Changes whenever the code would build other rows or columns."""
        text = "\n".join([self.select, self.owner_sql, self.order_by, *self.columns])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class SyncStats:
    sources: int = 0  # sources the table is made of now
    read: int = 0  # sources read (new, moved or racy)
    replaced: int = 0  # sources whose rows were replaced (new or changed bytes)
    removed: int = 0  # sources gone since the last build, rows deleted
    rebuilt: bool = False  # every source read (new table or new shape)
    rows: int = 0


def sync_table(
    db_path: str | os.PathLike[str],
    spec: TableSpec,
    store: BlobStore,
    sources: Iterable[ObjectInfo],
    clock: Callable[[], float] = time.time,
) -> SyncStats:
    """Bring ``spec.name`` in step with ``sources`` (see the module docstring)."""
    started = clock()
    stats = SyncStats()
    current = {info.key: info for info in sources}
    stats.sources = len(current)
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db_path)) as con:
        _ensure_ledger(con)
        previous, built_at = _previous(con, spec)
        stats.rebuilt = previous is None
        known = previous or {}
        frames: list[pd.DataFrame] = []
        replaced: list[str] = []
        ledger: list[tuple[str, float, int, str]] = []
        for key, info in sorted(current.items()):
            before = known.get(key)
            if (
                before is not None
                and (before[0], before[1]) == (info.modified, info.size)
                and info.modified < built_at - RACY_SECONDS
            ):
                ledger.append((key, info.modified, info.size, before[2]))
                continue
            try:
                data = store.get(key)
            except BlobNotFound:  # deleted since the listing: gone, like a vanished source
                continue
            stats.read += 1
            sha256 = hashlib.sha256(data).hexdigest()
            ledger.append((key, info.modified, info.size, sha256))
            if before is not None and before[2] == sha256:
                continue
            try:
                frames.append(spec.frame_of(key, data))
            except ValueError as exc:  # one bad source names itself; the table is untouched
                raise ValueError(f"{spec.name}: source {key} cannot be read: {exc}") from exc
            replaced.append(key)
        kept = {key for key, *_ in ledger}
        gone = [key for key in known if key not in kept]
        stats.replaced, stats.removed = len(replaced), len(gone)
        batch = _concat(frames, spec)
        con.register("batch", batch)
        con.execute("BEGIN TRANSACTION")
        if stats.rebuilt:
            con.execute(
                f"CREATE OR REPLACE TABLE {spec.name} AS {spec.select} ORDER BY {spec.order_by}"
            )
        elif replaced or gone:
            owners = pd.DataFrame({"owner": [spec.owner_of(k) for k in [*replaced, *gone]]})
            con.register("stale_owners", owners)
            con.execute(
                f"DELETE FROM {spec.name} WHERE {spec.owner_sql} IN (SELECT owner FROM stale_owners)"
            )
            con.execute(f"INSERT INTO {spec.name} {spec.select}")
        con.execute("DELETE FROM catalog_sources WHERE table_name = ?", [spec.name])
        con.register(
            "ledger",
            pd.DataFrame(ledger, columns=["key", "modified", "size", "sha256"]).astype(
                {"key": "string", "modified": "float64", "size": "int64", "sha256": "string"}
            ),
        )
        con.execute(
            "INSERT INTO catalog_sources SELECT ?, key, modified, size, sha256 FROM ledger",
            [spec.name],
        )
        con.execute(
            "INSERT OR REPLACE INTO catalog_builds VALUES (?, ?, ?)",
            [spec.name, spec.shape, started],
        )
        con.execute("COMMIT")
        ((rows,),) = con.execute(f"SELECT count(*) FROM {spec.name}").fetchall()
        stats.rows = int(rows)
    return stats


def _ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS catalog_sources (table_name VARCHAR, key VARCHAR,"
        " modified DOUBLE, size BIGINT, sha256 VARCHAR)"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS catalog_builds (table_name VARCHAR PRIMARY KEY,"
        " shape VARCHAR, built_at DOUBLE)"
    )


def _previous(
    con: duckdb.DuckDBPyConnection, spec: TableSpec
) -> tuple[dict[str, tuple[float, int, str]] | None, float]:
    """The sources of the last build and when it started; None when the table must be
    built from every source (missing, another shape, or built without the ledger)."""
    builds = con.execute(
        "SELECT shape, built_at FROM catalog_builds WHERE table_name = ?", [spec.name]
    ).fetchall()
    ((exists,),) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [spec.name]
    ).fetchall()
    if not builds or builds[0][0] != spec.shape or not exists:
        return None, 0.0
    build = builds[0]
    rows = con.execute(
        "SELECT key, modified, size, sha256 FROM catalog_sources WHERE table_name = ?",
        [spec.name],
    ).fetchall()
    return {str(k): (float(m), int(s), str(h)) for k, m, s, h in rows}, float(build[1])


def _concat(frames: list[pd.DataFrame], spec: TableSpec) -> pd.DataFrame:
    if not frames:
        return spec.empty()[list(spec.columns)]
    return pd.concat(frames, ignore_index=True)[list(spec.columns)]
