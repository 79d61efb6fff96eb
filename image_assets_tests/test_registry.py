import pytest

from image_assets.defs.vendors.partitions import manufacturer_partitions
from image_assets.scraping.registry import (
    CssCatalog,
    JsonLdCatalog,
    RegistryError,
    ShopifyCatalog,
    load_registry,
    parse_registry,
)


def test_default_registry_has_the_three_demo_vendors():
    registry = load_registry()
    assert registry.keys == ["estes", "loc", "rocketarium"]
    kinds = {v.key: type(v.catalog) for v in registry.vendors}
    assert kinds == {"estes": JsonLdCatalog, "loc": ShopifyCatalog, "rocketarium": CssCatalog}


def test_partitions_come_from_the_registry():
    assert manufacturer_partitions.get_partition_keys() == load_registry().keys


def test_env_references_expand_with_defaults(monkeypatch):
    text = """
vendors:
  - key: acme
    name: Acme
    catalog: {kind: shopify, base_url: "${ACME_URL:-https://acme.example}"}
"""
    monkeypatch.delenv("ACME_URL", raising=False)
    assert parse_registry(text).get("acme").catalog.base_url == "https://acme.example"
    monkeypatch.setenv("ACME_URL", "https://other.example")
    assert parse_registry(text).get("acme").catalog.base_url == "https://other.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vendors: [{key: Bad Key, name: x, catalog: {kind: shopify, base_url: u}}]", "slug"),
        ("vendors: [{key: a, name: x, catalog: {kind: ftp}}]", "does not match"),
        (
            "vendors: [{key: a, name: x, catalog: {kind: shopify, base_url: u}},"
            " {key: a, name: y, catalog: {kind: shopify, base_url: u}}]",
            "duplicate",
        ),
        (
            "vendors: [{key: a, name: x, catalog: {kind: shopify, base_url: '${NOPE_NOT_SET}'}}]",
            "NOPE_NOT_SET",
        ),
        ("vendors: [", "not valid YAML"),
    ],
)
def test_bad_registries_get_clear_errors(text, message, monkeypatch):
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(RegistryError, match=message):
        parse_registry(text)


def test_unknown_vendor_lists_known_ones():
    with pytest.raises(RegistryError, match="estes, loc, rocketarium"):
        load_registry().get("nope")
