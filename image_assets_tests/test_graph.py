"""The whole graph materialized against the demo sites over real HTTP, in a real Dagster instance."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import duckdb
import httpx
import pytest
from dagster import AssetKey, DagsterInstance, materialize
from PIL import Image

from image_assets.catalog.kits_csv import CONTRACT_COLUMNS, kits_columns, parse_csv
from image_assets.defs.catalog.assets import clean_kits
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.delivery.server import BackgroundDelivery
from image_assets.demo.sites import SHARED_PHOTO_VENDOR
from image_assets.records import TagRow
from image_assets.steps.tags import shared_picture_verdict
from image_assets_tests.metadata import plain
from image_assets_tests.processes import free_port

VENDORS = ["estes", "loc", "rocketarium"]
ALL_ASSETS = [*vendor_assets, clean_kits]


def _metadata(result, asset: str) -> dict:
    (mat,) = result.asset_materializations_for_node(asset)
    return plain(mat.metadata)


def _run_vendor(instance, data_dir, vendor):
    return materialize(
        vendor_assets,
        partition_key=vendor,
        resources=build_resources(str(data_dir)),
        instance=instance,
        raise_on_error=False,
    )


def _run_catalog(instance, data_dir):
    return materialize(
        ALL_ASSETS,
        selection=[clean_kits],
        resources=build_resources(str(data_dir)),
        instance=instance,
    )


@pytest.fixture(scope="module")
def graph_run(demo_server, tmp_path_factory):
    """Materialize every partition, then clean_kits; keep the instance and data for the tests."""
    data_dir = tmp_path_factory.mktemp("data")
    home = tmp_path_factory.mktemp("dagster_home")
    with (
        pytest.MonkeyPatch.context() as env,
        DagsterInstance.local_temp(str(home)) as instance,
    ):
        env.setenv("IMAGE_ASSETS_DATA_DIR", str(data_dir))
        delivery = BackgroundDelivery("127.0.0.1", free_port()).start()  # the CSV's links
        first = {v: _run_vendor(instance, data_dir, v) for v in VENDORS}
        catalog = _run_catalog(instance, data_dir)
        yield {
            "instance": instance,
            "data_dir": data_dir,
            "first": first,
            "catalog": catalog,
            "server": demo_server,
            "delivery": delivery,
        }
        delivery.stop()


def test_every_partition_succeeds_with_failures_recorded(graph_run):
    for vendor, result in graph_run["first"].items():
        assert result.success, vendor
        images = _metadata(result, "product_images")
        products = _metadata(result, "vendor_products")
        uploads = _metadata(result, "cdn_uploads")
        site = graph_run["server"].httpd.sites.products[vendor]
        assert products["products"] == len(site)
        assert images["images"] == products["image_urls"] >= len(site)
        assert images["images_failed"] == 2  # the 404 and the corrupt image
        assert images["failures_by_kind"] == {"http_status": 1, "corrupt": 1}
        shared = 1 if vendor == SHARED_PHOTO_VENDOR else 0  # its two kits' one photo
        assert uploads["uploads_saved"] == shared and (uploads["bytes_saved"] > 0) == bool(shared)
        assert uploads["images_uploaded"] + shared == images["images_ok"] > 0
        assert {"images_uploaded", "images_failed", "upload_duration_s"} <= set(uploads)


def test_metadata_reads_in_the_ui_shape_units_and_thumbnails(graph_run):
    """Row counts and column schemas under Dagster's standard keys, units in the names,
    counts as tables, and a preview whose thumbnails are images the UI can load, with
    each failed image named by its position."""
    for vendor, result in graph_run["first"].items():
        (mat,) = result.asset_materializations_for_node("kits_csv")
        schema = mat.metadata["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == list(kits_columns())
        meta = plain(mat.metadata)
        site = graph_run["server"].httpd.sites.products[vendor]
        assert meta["dagster/row_count"] == meta["products"] == len(site)
        assert {"duration_s", "bytes_out"} <= set(meta) and not {"duration", "bytes"} & set(meta)
        preview = meta["preview"]
        base = graph_run["delivery"].base_url
        thumbs = re.findall(r"!\[([^\]]+)\]\((\S+)\)", preview)
        assert thumbs and all(url.startswith(base + "/image/upload/") for _, url in thumbs)
        for _, url in thumbs[:3]:
            assert httpx.get(url).status_code == 200, url  # the UI loads them over HTTP
        assert "file://" not in preview
        assert re.search(r"\| image \d+: HTTP 404 \||, image \d+: HTTP 404", preview), preview
        images = plain(result.asset_materializations_for_node("product_images")[0].metadata)
        assert images["failures_by_kind"] == {"http_status": 1, "corrupt": 1}
        uploads = result.asset_materializations_for_node("cdn_uploads")[0].metadata
        assert uploads["failures_by_kind"].schema.columns[0].name == "kind"
    (catalog,) = graph_run["catalog"].asset_materializations_for_node("clean_kits")
    columns = {c.name: c.type for c in catalog.metadata["dagster/column_schema"].value.columns}
    assert columns["imageSrc"] == "VARCHAR" and columns["price"] == "DOUBLE"
    assert catalog.metadata["dagster/row_count"].value == plain(catalog.metadata)["rows"]


def test_every_image_has_tags_and_the_shared_photo_is_one_picture(graph_run):
    """image_tags: one row per rendered image (hashes and colours, or the reason it has
    none); the demo's rocketarium reuses one photo for two kits, and only those two
    products share a picture."""
    data_dir = Path(graph_run["data_dir"])
    for vendor, result in graph_run["first"].items():
        tags = plain(result.asset_materializations_for_node("image_tags")[0].metadata)
        renditions = _metadata(result, "image_renditions")
        assert tags["images"] == renditions["images"] and tags["tagger"] == "none"
        rows = [
            TagRow.model_validate(r)
            for r in json.loads(
                (data_dir / "raw" / "tags" / "vendors" / f"{vendor}.json").read_text()
            )
        ]
        assert len(rows) == tags["images"]
        for row in rows:
            assert (row.status == "ok" and row.phash and row.dominant_colours) or row.reason
        passed, _, over = shared_picture_verdict(rows, max_products=1, distance=4)
        if vendor == SHARED_PHOTO_VENDOR:
            assert not passed and [s.products for s in over] == [("rkt0006", "rkt0007")]
        else:
            assert passed, over


def test_kits_csvs_follow_the_contract(graph_run):
    data_dir = Path(graph_run["data_dir"])
    for vendor in VENDORS:
        path = data_dir / "raw" / "kits" / f"{vendor}_kits.csv"
        raw = path.read_bytes()
        rows = parse_csv(raw)
        assert raw.decode().splitlines()[0].split(",")[:5] == list(CONTRACT_COLUMNS)
        site = graph_run["server"].httpd.sites.products[vendor]
        assert len(rows) == len(site)
        with_image = [r for r in rows if r["image"]]
        assert 0 < len(with_image) < len(rows)  # products without images are kept
        for row in with_image:
            images = json.loads(row["images"])
            own = f"kits/{vendor}/{row['product_id']}"
            if (vendor, row["product_id"]) == (SHARED_PHOTO_VENDOR, "rkt0007"):
                own = f"kits/{vendor}/rkt0006"  # the same photo: the asset stored once
            assert images[0]["public_id"] == row["image"] == own
            for image in images:  # every link opens an image, served by the delivery service
                assert image["storage"] == "self" and len(image["sha256"]) == 64
                assert image["secure_url"].startswith(graph_run["delivery"].base_url + "/image/")
                master = httpx.get(image["secure_url"])
                assert master.status_code == 200 and len(master.content) == image["bytes"]
                for label, url in image["renditions"].items():
                    answer = httpx.get(url, headers={"Accept": "image/webp"})
                    assert answer.status_code == 200, (label, url, answer.text)
                    with Image.open(io.BytesIO(answer.content)) as shown:
                        assert shown.format.lower() == label.rsplit(".", 1)[1], label


def test_exif_rotated_image_is_published_upright(graph_run):
    # estes product index 2 (EST003) has its first image stored with EXIF orientation 6
    rows = parse_csv((Path(graph_run["data_dir"]) / "raw/kits/estes_kits.csv").read_bytes())
    row = next(r for r in rows if r["product_id"] == "est0003")
    first = json.loads(row["images"])[0]
    spec = graph_run["server"].httpd.sites.images["/estes/images/EST003-1.jpg"]
    assert spec.orientation == 6
    assert (first["width"], first["height"]) == (spec.width, spec.height)


def test_clean_kits_holds_every_product(graph_run):
    db = Path(graph_run["data_dir"]) / "catalog.duckdb"
    expected = sum(len(graph_run["server"].httpd.sites.products[v]) for v in VENDORS)
    with duckdb.connect(str(db), read_only=True) as con:
        total, nulls = con.execute(
            'select count(*), count(*) filter (where "imageSrc" is null) from clean_kits'
        ).fetchone()
        per = dict(
            con.execute("select manufacturer, count(*) from clean_kits group by 1").fetchall()
        )
    assert total == expected and nulls >= len(VENDORS)
    assert per == {v: len(graph_run["server"].httpd.sites.products[v]) for v in VENDORS}
    assert _metadata(graph_run["catalog"], "clean_kits")["rows"] == expected


def test_rerun_downloads_encodes_and_uploads_nothing(graph_run):
    instance, data_dir = graph_run["instance"], Path(graph_run["data_dir"])
    csv_before = {v: (data_dir / "raw/kits" / f"{v}_kits.csv").read_bytes() for v in VENDORS}
    for vendor in VENDORS:
        result = _run_vendor(instance, data_dir, vendor)
        assert result.success
        pages = _metadata(result, "vendor_pages")
        images = _metadata(result, "product_images")
        renditions = _metadata(result, "image_renditions")
        uploads = _metadata(result, "cdn_uploads")
        csv = _metadata(result, "kits_csv")
        tags = _metadata(result, "image_tags")
        # every page request was answered 304 (shopify also re-asks for its empty last page)
        assert pages["pages_fetched"] == 0 and pages["pages_not_modified"] >= pages["pages"] > 0
        assert images["images_downloaded"] == 0 and images["new_originals"] == 0
        assert renditions["images_encoded"] == 0
        assert uploads["images_uploaded"] == 0 and uploads["rendition_uploads"] == 0
        assert csv["changed"] is False
        # same rendition bytes: every tag row is the last run's, nothing decoded again
        assert tags["images_reused"] == tags["images_tagged"] > 0
        assert (data_dir / "raw/kits" / f"{vendor}_kits.csv").read_bytes() == csv_before[vendor]


def test_unreachable_vendor_fails_and_leaves_previous_outputs(graph_run, monkeypatch):
    instance, data_dir = graph_run["instance"], Path(graph_run["data_dir"])
    csv = data_dir / "raw/kits/loc_kits.csv"
    before = csv.read_bytes()
    monkeypatch.setenv(
        "IMAGE_ASSETS_DEMO_URL", "http://127.0.0.1:9"
    )  # nothing listens on the discard port
    result = _run_vendor(instance, data_dir, "loc")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "catalog of vendor 'loc' cannot be fetched" in str(failure.event_specific_data.error)
    assert csv.read_bytes() == before
    key = AssetKey("kits_csv")
    assert instance.get_latest_materialization_event(key) is not None
