"""Materialization metadata as plain values: a two-column counts table becomes a dict."""

from __future__ import annotations

from dagster import TableMetadataValue


def plain(metadata) -> dict:
    """``{key: value}``; a counts table (``kind``, ``images``) becomes ``{kind: images}``."""
    out = {}
    for key, entry in metadata.items():
        if isinstance(entry, TableMetadataValue) and len(entry.schema.columns) == 2:
            name, count = (column.name for column in entry.schema.columns)
            out[key] = {r.data[name]: r.data[count] for r in entry.records}
        else:
            out[key] = entry.value
    return out
