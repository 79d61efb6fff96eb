import json

import duckdb
import pytest

from image_assets.catalog import kits_csv
from image_assets.catalog.duckdb_catalog import build_catalog
from image_assets.catalog.kits_csv import (
    CONTRACT_COLUMNS,
    KitsColumn,
    KitsCsvError,
    build_rows,
    parse_csv,
    render_csv,
)
from image_assets.records import CdnAsset, Product, PublishedImage


def _upload(pid: str, position: int, ok: bool = True) -> PublishedImage:
    if not ok:
        return PublishedImage(product_id=pid, position=position, status="failed", reason="HTTP 404")
    asset = CdnAsset(
        public_id=f"kits/estes/{pid}" + ("" if position == 1 else f"/{position}"),
        storage="local",
        url=f"file:///cdn/{pid}-{position}.jpg",
        secure_url=f"file:///cdn/{pid}-{position}.jpg",
        bytes=10,
        width=4,
        height=3,
        format="jpeg",
        sha256="ab" * 32,
    )
    return PublishedImage(product_id=pid, position=position, status="uploaded", asset=asset)


def test_rows_follow_the_contract_and_keep_products_without_images():
    products = [
        Product(product_id="b", name="B", manufacturer="estes", image_urls=["u1", "u2"], price=3),
        Product(product_id="a", name='A, "quoted"', manufacturer="estes", image_urls=["x"]),
    ]
    uploads = [_upload("b", 2), _upload("b", 1), _upload("a", 1, ok=False)]
    data = render_csv(build_rows(products, uploads))
    rows = parse_csv(data)
    assert data.splitlines()[0].decode().split(",")[:5] == list(CONTRACT_COLUMNS)
    assert [r["product_id"] for r in rows] == ["a", "b"]
    assert (
        rows[0]["image"] == ""
        and json.loads(rows[0]["images"]) == []
        and rows[0]["images_failed"] == "1"
    )
    images = json.loads(rows[1]["images"])
    assert rows[1]["image"] == "kits/estes/b" and [i["public_id"] for i in images] == [
        "kits/estes/b",
        "kits/estes/b/2",
    ]
    assert set(images[0]) >= {
        "public_id",
        "storage",
        "url",
        "secure_url",
        "width",
        "height",
        "format",
        "bytes",
        "sha256",
    }
    assert render_csv(build_rows(products, list(reversed(uploads)))) == data  # deterministic


def test_parse_csv_rejects_broken_contract():
    with pytest.raises(KitsCsvError, match="do not start"):
        parse_csv(b"name,product_id,manufacturer,image,images\n")
    with pytest.raises(KitsCsvError, match="not JSON"):
        parse_csv(b"product_id,name,manufacturer,image,images\n1,a,m,,{oops\n")


def test_clean_kits_null_safe_image_src(tmp_path):
    products = [
        Product(product_id="a", name="A", manufacturer="estes", image_urls=["x"]),
        Product(product_id="b", name=" ", manufacturer="estes"),
    ]
    csvs = {"estes": render_csv(build_rows(products, [_upload("a", 1)])), "loc": render_csv([])}
    db = tmp_path / "catalog.duckdb"
    assert build_catalog(db, csvs) == {"estes": 2}
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            'select product_id, name, "imageSrc", image_count from clean_kits order by 1'
        ).fetchall()
    assert rows == [("a", "A", "file:///cdn/a-1.jpg", 1), ("b", None, None, 0)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    ("column", "cells", "expected"),
    [
        (
            KitsColumn("sku", "text", lambda f: f.product.sku or ""),
            {"a": "SKU-1", "b": ""},
            {"a": "SKU-1", "b": None},
        ),
        (
            KitsColumn("weight_g", "integer", lambda f: "125" if f.product.sku else ""),
            {"a": "125", "b": ""},
            {"a": 125, "b": None},
        ),
    ],
)
def test_a_column_added_to_the_table_reaches_clean_kits(
    tmp_path, monkeypatch, column, cells, expected
):
    """One line in KITS_TABLE is all it takes: the CSV gets the column and clean_kits
    gets it typed and null-safe, after the columns that were there."""
    monkeypatch.setattr(kits_csv, "KITS_TABLE", (*kits_csv.KITS_TABLE, column))
    products = [
        Product(product_id="a", name="A", manufacturer="estes", sku="SKU-1"),
        Product(product_id="b", name="B", manufacturer="estes"),
    ]
    data = render_csv(build_rows(products, []))
    rows = parse_csv(data)
    assert {r["product_id"]: r[column.name] for r in rows} == cells
    assert kits_csv.contract_problems(data) is None
    db = tmp_path / "catalog.duckdb"
    build_catalog(db, {"estes": data})
    with duckdb.connect(str(db), read_only=True) as con:
        names = [r[0] for r in con.execute("DESCRIBE clean_kits").fetchall()]
        values = dict(con.execute(f'SELECT product_id, "{column.name}" FROM clean_kits').fetchall())
    assert names[-1] == column.name and "imageSrc" in names
    assert values == expected


def test_clean_kits_columns_come_from_the_table(tmp_path):
    db = tmp_path / "catalog.duckdb"
    build_catalog(db, {})
    with duckdb.connect(str(db), read_only=True) as con:
        described = {r[0]: r[1] for r in con.execute("DESCRIBE clean_kits").fetchall()}
    for column in kits_csv.KITS_TABLE:
        assert column.name in described
    assert described["price"] == "DOUBLE" and described["images_failed"] == "INTEGER"
    assert described["images"] == "JSON" and described["image_count"] == "UBIGINT"


def test_image_metadata_columns_are_typed_whatever_the_rows_hold(tmp_path):
    from image_assets.catalog.duckdb_catalog import build_image_metadata
    from image_assets.records import AuditRow

    db = tmp_path / "catalog.duckdb"
    build_image_metadata(db, [AuditRow(key="k", source="vendor", status="processed")])
    with duckdb.connect(str(db), read_only=True) as con:
        types = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE image_metadata)").fetchall()
        )
    assert types["reason"] == types["failure"] == types["sha256"] == "VARCHAR"  # all NULL here
    assert types["bytes"] == types["width"] == "BIGINT"
    assert types["processed_at"] == "TIMESTAMP WITH TIME ZONE"
