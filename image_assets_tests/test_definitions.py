import itertools

from dagster import AssetKey, Definitions

from image_assets.definitions import defs
from image_assets.imaging.config import load_rendition_config


def test_definitions_are_loadable():
    Definitions.validate_loadable(defs)


def test_graph_shape_and_partitions():
    graph = defs.resolve_asset_graph()
    chain = [
        "vendor_pages",
        "vendor_products",
        "product_images",
        "image_renditions",
        "cdn_uploads",
        "kits_csv",
    ]
    for upstream, downstream in itertools.pairwise(chain):
        assert AssetKey(upstream) in graph.get(AssetKey(downstream)).parent_keys
    assert AssetKey("kits_csv") in graph.get(AssetKey("clean_kits")).parent_keys
    for name in chain:
        assert graph.get(AssetKey(name)).partitions_def.get_partition_keys() == [
            "estes",
            "loc",
            "rocketarium",
        ]
    assert graph.get(AssetKey("clean_kits")).partitions_def is None


def test_rendition_config_feeds_code_version():
    node = defs.resolve_asset_graph().get(AssetKey("image_renditions"))
    assert node.code_version == load_rendition_config().fingerprint()


def test_runs_render_with_the_config_the_code_version_was_taken_from(tmp_path, monkeypatch):
    """One source: the resource holds no path of its own that could disagree."""
    from image_assets.defs.resources import RenditionsResource

    node = defs.resolve_asset_graph().get(AssetKey("image_renditions"))
    assert RenditionsResource().config().fingerprint() == node.code_version
    other = tmp_path / "renditions.yaml"
    other.write_text(
        "renditions:\n  - {name: only, width: 100, formats: [{format: webp}]}\n", "utf-8"
    )
    monkeypatch.setenv("IMAGE_ASSETS_RENDITIONS", str(other))
    assert RenditionsResource().config() == load_rendition_config(other)
    assert RenditionsResource().config().fingerprint() != node.code_version
