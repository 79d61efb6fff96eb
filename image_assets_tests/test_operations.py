"""Operations: checks on crafted bad data, freshness, schedule, automation and retries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    build_schedule_context,
    materialize,
)
from dagster._core.definitions.dependency import NodeHandle

from image_assets.catalog.kits_csv import contract_problems, render_csv
from image_assets.catalog.quality import cdn_urls, image_failure_share, required_fields
from image_assets.definitions import defs
from image_assets.defs.catalog.assets import clean_kits
from image_assets.defs.catalog.checks import checks as catalog_checks
from image_assets.defs.catalog.sensors import catalog_automation
from image_assets.defs.profiles import build_resources
from image_assets.defs.settings import catalog_freshness_policy
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks as vendor_checks
from image_assets.defs.vendors.schedules import daily_vendor_refresh
from image_assets.records import CdnAsset, ImageRecord, Product, PublishedImage
from image_assets.scraping.registry import load_registry


def test_freshness_policies_on_the_catalog_assets(monkeypatch):
    graph = defs.resolve_asset_graph()
    for name in ("vendor_products", "kits_csv", "clean_kits"):
        policy = graph.get(AssetKey(name)).freshness_policy
        assert policy.fail_window.to_timedelta() == dt.timedelta(hours=36), name
        assert policy.warn_window.to_timedelta() == dt.timedelta(hours=26), name
    monkeypatch.setenv("IMAGE_ASSETS_FRESHNESS_WARN_HOURS", "2")
    monkeypatch.setenv("IMAGE_ASSETS_FRESHNESS_FAIL_HOURS", "4")
    assert catalog_freshness_policy().fail_window.to_timedelta() == dt.timedelta(hours=4)
    monkeypatch.setenv("IMAGE_ASSETS_FRESHNESS_WARN_HOURS", "5")
    with pytest.raises(ValueError, match="warn"):
        catalog_freshness_policy()


def test_daily_schedule_requests_every_partition_once():
    context = build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 22, 3, tzinfo=dt.UTC)
    )
    requests = daily_vendor_refresh(context)
    assert [r.partition_key for r in requests] == load_registry().keys
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(r.run_key.startswith("2026-11-22:") for r in requests)
    assert defs.resolve_schedule_def("daily_vendor_refresh").cron_schedule == "0 3 * * *"


def test_catalog_follows_the_vendors_and_network_assets_retry():
    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("clean_kits")).automation_condition is not None
    assert catalog_automation.asset_selection.resolve(graph) == {
        AssetKey("clean_kits"),
        AssetKey("image_metadata"),
        AssetKey("image_tags_table"),
    }
    job = defs.resolve_job_def("vendor_catalog_job")
    for name in ("vendor_pages", "product_images", "cdn_uploads"):
        policy = job.get_retry_policy_for_handle(NodeHandle(name, None))
        assert policy is not None and policy.max_retries >= 1, name
    assert graph.get(AssetKey("clean_kits")).pools == {"duckdb_writer"}


def test_required_fields_rule():
    good = [Product(product_id="est0001", manufacturer="estes", url="https://e.example/p/1")]
    assert required_fields(good, "estes").passed
    bad = [
        Product(product_id="Bad ID", manufacturer="estes"),
        Product(product_id="x", manufacturer="loc"),
        Product(product_id="y", manufacturer="estes", url="javascript:alert(1)"),
    ]
    verdict = required_fields(bad, "estes")
    assert not verdict.passed and verdict.metadata["bad_products"] == 3


def test_image_failure_share_rule():
    ok = ImageRecord(product_id="a", position=1, source_url="u", status="ok")
    failed = ImageRecord(
        product_id="a", position=2, source_url="v", status="failed", reason="HTTP 404"
    )
    assert image_failure_share([ok, ok, failed], 0.5).passed
    verdict = image_failure_share([ok, failed, failed], 0.5)
    assert not verdict.passed and "2/3 images failed" in verdict.summary


def test_cdn_urls_rule(tmp_path):
    present = tmp_path / "a.jpg"
    present.write_bytes(b"x")

    def upload(url: str) -> PublishedImage:
        asset = CdnAsset(
            public_id="p",
            storage="local",
            url=url,
            secure_url=url,
            bytes=1,
            format="jpeg",
            sha256="s",
        )
        return PublishedImage(product_id="p", position=1, status="uploaded", asset=asset)

    assert cdn_urls([upload(present.as_uri()), upload("https://res.example/x.jpg")]).passed
    assert not cdn_urls([upload((tmp_path / "gone.jpg").as_uri())]).passed
    assert not cdn_urls([upload("not a url")]).passed


def _check(result, name: str) -> bool:
    (evaluation,) = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == name
    ]
    return evaluation.passed


def test_kits_csv_and_clean_kits_checks_catch_crafted_bad_data(demo_server, tmp_path):
    data_dir, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    vendor_side = [*vendor_assets, *vendor_checks]
    catalog_side = [*vendor_assets, clean_kits, *catalog_checks]
    resources = build_resources(str(data_dir))
    with DagsterInstance.local_temp(str(home)) as instance:
        for vendor in load_registry().keys:
            assert materialize(
                vendor_side,
                partition_key=vendor,
                resources=resources,
                instance=instance,
            ).success
        good = materialize(
            catalog_side,
            selection=AssetSelection.assets(clean_kits),
            resources=resources,
            instance=instance,
        )
        assert _check(good, "clean_kits_row_count")

        # a hand-edited CSV: one product dropped, and a column renamed
        csv_path = Path(data_dir) / "raw/kits/loc_kits.csv"
        lines = csv_path.read_text().splitlines()
        csv_path.write_text(
            "\n".join([lines[0].replace("images_failed", "failed"), *lines[1:-1]]) + "\n"
        )
        assert "differ from" in contract_problems(csv_path.read_bytes())
        count = materialize(
            catalog_side,
            selection=AssetSelection.checks(
                AssetCheckKey(AssetKey("clean_kits"), "clean_kits_row_count")
            ),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert _check(count, "clean_kits_row_count") is False


def test_kits_csv_contract_rule():
    good = render_csv([])
    assert contract_problems(good) is None
    assert "differ from" in contract_problems(good.replace(b"placeholder", b"thumb"))
    assert "do not start" in contract_problems(b"name,product_id\n")
    row = b"p1,Kit,estes,,{not json,,,,0,,\n"
    assert "not JSON" in contract_problems(good + row)
