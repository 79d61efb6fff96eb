"""The scraper-breakage check: unit rules, and blocking a broken vendor in a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize

from image_assets.catalog.quality import duplicate_ids, quota_trend, scraper_breakage
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks
from image_assets.records import Product
from image_assets.scraping.registry import CheckThresholds, registry_text


def _products(n: int, named: int | None = None, with_image: int | None = None) -> list[Product]:
    named = n if named is None else named
    with_image = n if with_image is None else with_image
    return [
        Product(
            product_id=f"p{i}",
            manufacturer="m",
            name=f"P{i}" if i < named else None,
            image_urls=["u"] if i < with_image else [],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("products", "previous", "passed", "message"),
    [
        (_products(10), 10, True, "healthy"),
        (_products(6), 10, True, "healthy"),
        (_products(4), 10, False, "dropped 60%"),
        (_products(0), 10, False, "no products"),
        (_products(10, named=5), None, False, "5/10 products have no name"),
        (_products(10, with_image=2), None, False, "8/10 products have no image"),
    ],
)
def test_scraper_breakage_rules(products, previous, passed, message):
    verdict = scraper_breakage(products, previous, CheckThresholds())
    assert verdict.passed is passed and message in verdict.summary


def test_duplicate_ids():
    assert duplicate_ids(_products(3)).passed
    dupes = _products(2) + _products(1)
    verdict = duplicate_ids(dupes)
    assert not verdict.passed and "p0" in verdict.summary


def _registry(tmp_path: Path, **rocketarium_changes) -> Path:
    data = yaml.safe_load(registry_text())
    vendor = next(v for v in data["vendors"] if v["key"] == "rocketarium")
    for key, value in rocketarium_changes.items():
        if key == "name_selector":
            vendor["catalog"]["name"] = {"selector": value}
        else:
            vendor[key] = value
    path = tmp_path / f"vendors-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(instance, data_dir, registry, monkeypatch):
    monkeypatch.setenv("IMAGE_ASSETS_REGISTRY", str(registry))
    return materialize(
        [*vendor_assets, *checks],
        partition_key="rocketarium",
        resources=build_resources(str(data_dir)),
        instance=instance,
        raise_on_error=False,
    )


def _check_results(result) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_broken_vendor_is_caught_and_blocks_downstream(demo_server, tmp_path, monkeypatch):
    data_dir, home, regs = tmp_path / "data", tmp_path / "home", tmp_path / "regs"
    for folder in (home, regs):
        folder.mkdir()
    with DagsterInstance.local_temp(str(home)) as instance:
        good = _run(instance, data_dir, _registry(regs), monkeypatch)
        assert good.success and _check_results(good) == {
            "scraper_not_broken": True,
            "unique_product_ids": True,
            "required_fields_present": True,
            "image_failures_under_limit": True,  # 2 of 12 demo images fail: under 50%
            "cdn_urls_valid": True,
            "kits_csv_contract": True,
            "cloudinary_quota": True,  # local CDN: nothing to watch
            "pictures_not_shared": False,  # the demo's two kits with one photo (a warning)
        }
        csv = data_dir / "raw/kits/rocketarium_kits.csv"
        before = csv.read_bytes()

        # the vendor "changed its HTML": the name selector no longer matches anything
        broken = _run(instance, data_dir, _registry(regs, name_selector="h1.renamed"), monkeypatch)
        assert _check_results(broken)["scraper_not_broken"] is False
        materialized = {
            e.event_specific_data.materialization.asset_key.path[-1]
            for e in broken.get_asset_materialization_events()
        }
        assert "product_images" not in materialized and "kits_csv" not in materialized
        assert csv.read_bytes() == before  # the website keeps the last good CSV

        # a count drop beyond 50% against the previous materialization
        dropped = _run(instance, data_dir, _registry(regs, max_products=3), monkeypatch)
        assert _check_results(dropped)["scraper_not_broken"] is False
        assert csv.read_bytes() == before


def test_scraper_check_numbers_are_comparable_across_vendors():
    """The UI plots a check's numbers as one line over every vendor's partitions: a
    healthy 9-product vendor and a healthy 900-product one give the same points."""
    small = scraper_breakage(_products(9), 9, CheckThresholds()).metadata
    large = scraper_breakage(_products(900), 900, CheckThresholds()).metadata
    assert (
        small
        == large
        == {
            "count_vs_previous": 1.0,
            "share_without_name": 0.0,
            "share_without_image": 0.0,
        }
    )
    dropped = scraper_breakage(_products(4), 10, CheckThresholds())
    assert dropped.metadata["count_vs_previous"] == 0.4 and "10 -> 4" in dropped.summary
    first = scraper_breakage(_products(9), None, CheckThresholds())
    assert (
        first.metadata["count_vs_previous"] is None and "9 products look healthy" in first.summary
    )


def test_quota_trend_gives_the_rate_and_the_days_left_until_80_percent():
    day = 86400.0
    readings = [
        (0.0, {"storage": 40.0, "bandwidth": 10.0}),
        (1 * day, {"storage": 42.0, "bandwidth": 10.0}),
        (2 * day, {"storage": 44.0, "bandwidth": 9.0}),
        (3 * day, {"storage": 46.0}),
    ]
    trend = quota_trend(readings)
    assert trend["storage"] == (2.0, 17.0)  # (80 - 46) / 2 per day
    slope, left = trend["bandwidth"]
    assert slope < 0 and left is None  # falling: never at this rate
    assert quota_trend([(0.0, {"credits": 81.0}), (day, {"credits": 85.0})])["credits"][1] == 0
    assert quota_trend([(0.0, {"storage": 1.0})]) == {}  # one reading: no trend yet
    assert quota_trend([(0.0, {"storage": 1.0}), (30.0, {"storage": 2.0})]) == {}  # too close
