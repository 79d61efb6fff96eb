"""A rendition config change marks renditions stale; re-materializing regenerates them
from the stored originals without downloading anything again."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

import image_assets.defs.vendors.assets as vendor_assets_module
from image_assets.catalog.kits_csv import parse_csv
from image_assets.defs.profiles import build_resources


@pytest.fixture
def reload_assets(monkeypatch):
    """Load the asset module again under the current environment; restore it afterwards."""
    yield lambda: importlib.reload(vendor_assets_module).assets
    monkeypatch.delenv("IMAGE_ASSETS_RENDITIONS", raising=False)
    importlib.reload(vendor_assets_module)


def _meta(result, name: str) -> dict:
    (mat,) = result.asset_materializations_for_node(name)
    return {k: v.value for k, v in mat.metadata.items()}


def test_config_change_marks_stale_and_regenerates_without_downloads(
    demo_server, tmp_path, monkeypatch, reload_assets
):
    data_dir = tmp_path / "data"
    (tmp_path / "home").mkdir()
    monkeypatch.delenv("IMAGE_ASSETS_RENDITIONS", raising=False)
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        assets_a = reload_assets()
        first = materialize(
            assets_a,
            partition_key="estes",
            resources=build_resources(str(data_dir)),
            instance=instance,
        )
        assert first.success
        resolver = get_stale_status_resolver(instance, assets_a)
        assert resolver.get_status(AssetKey("image_renditions"), "estes") == StaleStatus.FRESH

        # add an AVIF rendition to the config
        config = yaml.safe_load(
            Path(vendor_assets_module.__file__).parents[2].joinpath("renditions.yaml").read_text()
        )
        config["renditions"].append(
            {
                "name": "w800_avif",
                "width": 800,
                "crop": "limit",
                "formats": [{"format": "avif", "quality": 50}],
            }
        )
        changed = tmp_path / "renditions.yaml"
        changed.write_text(yaml.safe_dump(config))
        monkeypatch.setenv("IMAGE_ASSETS_RENDITIONS", str(changed))
        assets_b = reload_assets()

        resolver = get_stale_status_resolver(instance, assets_b)
        assert resolver.get_status(AssetKey("image_renditions"), "estes") == StaleStatus.STALE
        assert resolver.get_status(AssetKey("product_images"), "estes") == StaleStatus.FRESH
        assert resolver.get_status(AssetKey("image_renditions"), "loc") == StaleStatus.MISSING

        # "materialize stale": the renditions alone, from the stored originals
        only = materialize(
            assets_b,
            selection=["image_renditions"],
            partition_key="estes",
            resources=build_resources(str(data_dir)),
            instance=instance,
        )
        renditions = _meta(only, "image_renditions")
        assert renditions["images_encoded"] == renditions["images"] > 0
        resolver = get_stale_status_resolver(instance, assets_b)
        assert resolver.get_status(AssetKey("image_renditions"), "estes") == StaleStatus.FRESH
        assert resolver.get_status(AssetKey("cdn_uploads"), "estes") == StaleStatus.STALE

        # the per-vendor backfill of the whole chain: nothing is downloaded again
        second = materialize(
            assets_b,
            partition_key="estes",
            resources=build_resources(str(data_dir)),
            instance=instance,
        )
        assert second.success
        assert _meta(second, "product_images")["images_downloaded"] == 0
        assert _meta(second, "image_renditions")["images_encoded"] == 0  # made just above
        # the new rendition reaches the catalogue: an AVIF transformation URL per image
        rows = parse_csv((data_dir / "raw" / "kits" / "estes_kits.csv").read_bytes())
        avif = [
            image["renditions"]["w800_avif.avif"]
            for row in rows
            for image in json.loads(row["images"])
        ]
        assert len(avif) == renditions["images"]
        assert all("f_avif" in url and "w_800" in url for url in avif)
        resolver = get_stale_status_resolver(instance, assets_b)
        for name in ("image_renditions", "cdn_uploads", "kits_csv"):
            assert resolver.get_status(AssetKey(name), "estes") == StaleStatus.FRESH, name
