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


MISTAKES = """
vendors:
  - key: apogee
    name: Apogee
    catalog: {kind: shopify, base_url: "https://shop.example", colection: rockets}
    htp: {requests_per_second: 5}
  - key: acme
    name: Acme
    catalog: {kind: css, start_urls: ["https://acme.example/"], product_links: a,
              nam: {selector: h1}}
    checks: {max_count_drop: 2}
  - name: no key
    catalog: {kind: sitemap}
"""


def test_registry_mistakes_are_one_line_each_naming_vendor_field_and_fix():
    with pytest.raises(RegistryError) as info:
        parse_registry(MISTAKES, "my-vendors.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        "my-vendors.yaml: vendor 'apogee': catalog.colection: unknown field 'colection'; "
        "did you mean 'collection'? (allowed: base_url, collection, currency, kind, page_size)",
        "my-vendors.yaml: vendor 'apogee': htp: unknown field 'htp'; did you mean 'http'? "
        "(allowed: allow_private_networks, catalog, checks, currency, decimal_separator, "
        "http, key, locale, max_pages, max_products, name, retention_days)",
        "my-vendors.yaml: vendor 'acme': catalog.name: required field is missing",
        "my-vendors.yaml: vendor 'acme': catalog.nam: unknown field 'nam'; did you mean "
        "'name'? (allowed: currency, images, kind, name, next_page, page_param, price, "
        "product_links, sku, start_urls)",
        "my-vendors.yaml: vendor 'acme': checks.max_count_drop: Input should be less than "
        "or equal to 1",
        "my-vendors.yaml: vendor #3: key: required field is missing",
        "my-vendors.yaml: vendor #3: catalog: Input tag 'sitemap' found using 'kind' does "
        "not match any of the expected tags: 'structured', 'jsonld', 'shopify', 'css', "
        "'embedded_json', 'woocommerce'",
    ]
    assert "pydantic" not in str(info.value) and "errors.pydantic.dev" not in str(info.value)
