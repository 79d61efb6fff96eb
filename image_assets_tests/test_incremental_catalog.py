"""Catalog tables kept in step source by source: after any sequence of writes, rewrites
and deletions of source blobs, the table equals the one rebuilt from every source, and
only the sources that changed are read."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image_assets.catalog.audit import load_audit_rows, save_vendor_audit_rows
from image_assets.catalog.duckdb_catalog import (
    IMAGE_METADATA,
    build_catalog,
    build_image_metadata,
    sync_clean_kits,
    sync_image_metadata,
)
from image_assets.catalog.incremental import sync_table
from image_assets.catalog.kits_csv import build_rows, render_csv
from image_assets.catalog.tags_table import (
    build_image_tags,
    hashed_tag_rows,
    load_tag_rows,
    save_tag_rows,
    save_upload_tag_row,
    sync_image_tags,
)
from image_assets.layout import kits_csv_key, upload_audit_key
from image_assets.records import AuditRow, Product, TagRow
from image_assets.storage import LocalBlobStore


def _later() -> float:
    """A build clock an hour ahead: nothing written in the test is racy, so the sources
    skipped without reading are exactly the ones whose time and size did not move."""
    return time.time() + 3600


def _table(db: Path, table: str, order: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def _put_upload(raw: LocalBlobStore, upload_id: str, status: str) -> None:
    row = AuditRow(key=upload_id, source="upload", status=status, bytes=len(status))
    raw.put(upload_audit_key(upload_id), row.model_dump_json().encode())


def _put_vendor(raw: LocalBlobStore, manufacturer: str, count: int, status: str) -> None:
    rows = [
        AuditRow(
            key=f"{manufacturer}/p{i}/1", source="vendor", manufacturer=manufacturer, status=status
        )
        for i in range(count)
    ]
    save_vendor_audit_rows(raw, manufacturer, rows)


_EVENT = st.one_of(
    st.tuples(st.just("upload"), st.integers(0, 5), st.sampled_from(["processed", "rejected"])),
    st.tuples(st.just("drop upload"), st.integers(0, 5), st.just("")),
    st.tuples(st.just("vendor"), st.sampled_from(["estes", "loc"]), st.integers(0, 3)),
    st.tuples(st.just("drop vendor"), st.sampled_from(["estes", "loc"]), st.just(0)),
    st.tuples(st.just("sync"), st.just(0), st.just("")),
)


@settings(max_examples=40, deadline=None)
@given(events=st.lists(_EVENT, min_size=1, max_size=14))
def test_image_metadata_in_step_equals_rebuilt_from_every_source(events):
    with tempfile.TemporaryDirectory() as work:
        raw, db = LocalBlobStore(Path(work) / "raw"), Path(work) / "catalog.duckdb"
        for kind, who, what in [*events, ("sync", 0, "")]:
            if kind == "upload":
                _put_upload(raw, f"u{who}", str(what))
            elif kind == "drop upload":
                raw.delete(upload_audit_key(f"u{who}"))
            elif kind == "vendor":
                _put_vendor(raw, str(who), int(what), "processed")
            elif kind == "drop vendor":
                raw.delete(f"audit/vendors/{who}.json")
            else:
                sync_table(db, IMAGE_METADATA, raw, _sources(raw), clock=_later)
                reference = Path(work) / "reference.duckdb"
                reference.unlink(missing_ok=True)
                build_image_metadata(reference, load_audit_rows(raw))
                order = "source, key"
                # processed_at is the time each row was made, the same in both
                assert _table(db, "image_metadata", order) == _table(
                    reference, "image_metadata", order
                )


def _sources(raw: LocalBlobStore):
    return [*raw.list_info("audit/uploads"), *raw.list_info("audit/vendors")]


def test_only_changed_sources_are_read_and_replaced(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    for i in range(50):
        _put_upload(raw, f"u{i}", "processed")
    _put_vendor(raw, "estes", 10, "processed")
    first, counts = sync_image_metadata(db, raw)  # as the asset calls it
    assert counts == {"processed": 60}
    assert first.rebuilt and first.read == first.replaced == 51 and first.rows == 60

    # built on the real clock a moment ago: every source is racy, so read again, and
    # none replaced (same bytes)
    racy = sync_table(db, IMAGE_METADATA, raw, _sources(raw), clock=_later)
    assert not racy.rebuilt and racy.read == 51 and racy.replaced == racy.removed == 0
    again = sync_table(db, IMAGE_METADATA, raw, _sources(raw), clock=_later)
    assert not again.rebuilt and again.read == again.replaced == again.removed == 0
    assert again.rows == 60

    _put_upload(raw, "u50", "processed")  # new
    _put_upload(raw, "u3", "rejected")  # changed
    raw.delete(upload_audit_key("u7"))  # erased
    _put_vendor(raw, "estes", 4, "failed")  # fewer rows
    step = sync_table(db, IMAGE_METADATA, raw, _sources(raw), clock=_later)
    assert (step.read, step.replaced, step.removed) == (3, 3, 1)
    assert step.rows == 50 + 4
    statuses = dict(_keyed(db))
    assert statuses["u3"] == "rejected" and "u7" not in statuses and "u50" in statuses
    assert {statuses[f"estes/p{i}/1"] for i in range(4)} == {"failed"}
    assert "estes/p5/1" not in statuses


def _keyed(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT key, status FROM image_metadata").fetchall()


def test_a_rewrite_that_keeps_time_and_size_is_caught_while_it_is_racy(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    _put_upload(raw, "u1", "processed")
    sync_table(db, IMAGE_METADATA, raw, _sources(raw))  # the real clock
    path = raw.path(upload_audit_key("u1"))
    stat = path.stat()
    # same length, same modification time: only the bytes tell
    path.write_bytes(path.read_bytes().replace(b'"processed"', b'"xrocessed"'))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # read again, so its bad row is seen, and the error names the source
    with pytest.raises(
        ValueError,
        match=r"(?s)image_metadata: source audit/uploads/u1\.json cannot be read: .*status",
    ):
        sync_table(db, IMAGE_METADATA, raw, _sources(raw))
    assert _keyed(db) == [("u1", "processed")]  # and the table is left as it was
    _put_upload(raw, "u1", "rejected")
    sync_table(db, IMAGE_METADATA, raw, _sources(raw))
    assert _keyed(db) == [("u1", "rejected")]


def test_a_new_shape_or_a_file_built_before_the_ledger_is_rebuilt(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    _put_upload(raw, "u1", "processed")
    build_image_metadata(db, [AuditRow(key="stale", source="upload", status="processed")])
    stats = sync_table(db, IMAGE_METADATA, raw, _sources(raw), clock=_later)
    assert stats.rebuilt and _keyed(db) == [("u1", "processed")]
    from dataclasses import replace

    wider = replace(IMAGE_METADATA, select="SELECT *, 1 AS extra FROM batch")
    stats = sync_table(db, wider, raw, _sources(raw), clock=_later)
    assert stats.rebuilt and stats.read == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT extra FROM image_metadata").fetchall() == [(1,)]


def _csv(manufacturer: str, ids: list[str], owner: str | None = None) -> bytes:
    products = [
        Product(product_id=i, name=i.upper(), manufacturer=owner or manufacturer) for i in ids
    ]
    return render_csv(build_rows(products, []))


def test_clean_kits_replaces_one_manufacturer_and_drops_an_unlisted_one(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    raw.put(kits_csv_key("estes"), _csv("estes", ["a", "b"]))
    raw.put(kits_csv_key("loc"), _csv("loc", ["c"]))
    stats, counts, missing = sync_clean_kits(db, raw, ["estes", "loc", "rocketarium"])
    assert counts == {"estes": 2, "loc": 1} and missing == ["rocketarium"] and stats.rebuilt
    raw.put(kits_csv_key("estes"), _csv("estes", ["a", "b", "d"]))
    stats, counts, _ = sync_clean_kits(db, raw, ["estes", "loc"])
    assert counts == {"estes": 3, "loc": 1} and stats.replaced == 1
    reference = tmp_path / "reference.duckdb"
    build_catalog(reference, {m: raw.get(kits_csv_key(m)) for m in ("estes", "loc")})
    order = "manufacturer, product_id"
    assert _table(db, "clean_kits", order) == _table(reference, "clean_kits", order)
    stats, counts, _ = sync_clean_kits(db, raw, ["loc"])  # estes left the registry
    assert counts == {"loc": 1} and stats.removed == 1


def test_a_kits_csv_holding_another_manufacturers_rows_is_refused_clearly(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    raw.put(kits_csv_key("estes"), _csv("estes", ["a"]))
    sync_clean_kits(db, raw, ["estes"])
    raw.put(kits_csv_key("estes"), _csv("estes", ["a", "b"], owner="loc"))
    with pytest.raises(ValueError, match=r"kits/estes_kits\.csv holds rows of other manufacturers"):
        sync_clean_kits(db, raw, ["estes"])
    assert [r[0] for r in _table(db, "clean_kits", "product_id")] == ["a"]


def test_image_tags_in_step_and_the_hashes_read_back_from_the_table(tmp_path):
    raw, db = LocalBlobStore(tmp_path / "raw"), tmp_path / "catalog.duckdb"
    look = {"phash": "f0f0f0f00f0f0f0f", "dhash": "0123456789abcdef", "average_colour": "#808080"}
    save_tag_rows(
        raw,
        "estes",
        [
            TagRow(
                key="estes/a/1",
                manufacturer="estes",
                product_id="a",
                position=1,
                status="ok",
                **look,
            ),
            TagRow(
                key="estes/b/1",
                manufacturer="estes",
                product_id="b",
                position=1,
                status="failed",
                reason="x",
            ),
        ],
    )
    save_upload_tag_row(
        raw, TagRow(key="u1", source="upload", status="ok", labels_status="off", **look)
    )
    stats, counts = sync_image_tags(db, raw)
    assert counts == {"ok": 2, "failed": 1} and stats.rows == 3
    reference = tmp_path / "reference.duckdb"
    build_image_tags(reference, load_tag_rows(raw))
    assert _table(db, "image_tags", "key") == _table(reference, "image_tags", "key")
    hashed = hashed_tag_rows(db)
    assert [(r.key, r.source, r.phash) for r in hashed] == [
        ("estes/a/1", "vendor", look["phash"]),
        ("u1", "upload", look["phash"]),
    ]
    raw.delete("tags/uploads/u1.json")
    stats, counts = sync_image_tags(db, raw)
    assert stats.removed == 1 and counts == {"ok": 1, "failed": 1}
    with duckdb.connect(str(db), read_only=True) as con:
        ((labels, kind),) = con.execute(
            "SELECT labels, typeof(labels) FROM image_tags WHERE key = 'estes/a/1'"
        ).fetchall()
    assert json.loads(labels) == [] and kind == "JSON"
