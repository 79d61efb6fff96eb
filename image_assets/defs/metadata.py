"""Metadata in the forms the Dagster UI understands: table shape under Dagster's standard
keys (a Columns section and a row count on the asset page) and counts as tables.

Every number's unit is in its key (``duration_s``, ``bytes_out``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"


def table_shape(columns: Iterable[tuple[str, str]], rows: int) -> dict[str, Any]:
    """``dagster/row_count`` and ``dagster/column_schema`` for a table of ``columns``
    (name, type)."""
    return {
        ROW_COUNT: rows,
        COLUMN_SCHEMA: TableSchema(columns=[TableColumn(name, kind) for name, kind in columns]),
    }


def counts_table(counts: Mapping[str, int], key: str, value: str = "images") -> MetadataValue:
    """``{"corrupt": 2}`` as a two-column table (``key``, ``value``), largest first."""
    return MetadataValue.table(
        records=[
            TableRecord({key: name, value: count})
            for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ],
        schema=TableSchema(columns=[TableColumn(key, "string"), TableColumn(value, "int")]),
    )
