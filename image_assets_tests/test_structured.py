"""The structured-data reader, case by case, and prices by locale."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from image_assets.records import PageRecord, Product
from image_assets.scraping.crawl import parse_products
from image_assets.scraping.extractors import extract_css, extract_structured
from image_assets.scraping.identity import keep_published_ids
from image_assets.scraping.prices import PriceHint, parse_price, parse_price_text
from image_assets.scraping.registry import CssCatalog, RegistryError, parse_registry
from image_assets.storage import MemoryBlobStore


def _ld(*nodes: object, head: str = "") -> bytes:
    scripts = "".join(f'<script type="application/ld+json">{json.dumps(n)}</script>' for n in nodes)
    return f"<html><head>{head}{scripts}</head><body></body></html>".encode()


URL = "https://shop.example/p/x"


def test_the_lowest_current_offer_never_a_strikethrough_price():
    page = _ld(
        {
            "@type": "Product",
            "name": "N",
            "sku": "S",
            "offers": [
                {"@type": "Offer", "price": "30.00", "priceCurrency": "EUR"},
                {
                    "@type": "Offer",
                    "priceSpecification": [
                        {
                            "@type": "UnitPriceSpecification",
                            "priceType": "https://schema.org/StrikethroughPrice",
                            "price": 5,
                        },
                        {
                            "@type": "UnitPriceSpecification",
                            "price": 12,
                            "priceCurrency": "EUR",
                            "referenceQuantity": {"value": 1, "unitCode": "KGM"},
                        },
                        {"@type": "UnitPriceSpecification", "price": 25, "priceCurrency": "EUR"},
                    ],
                },
            ],
        }
    )
    (product,), _ = extract_structured(page, URL, "m")
    assert (product.price, product.currency) == (
        25.0,
        "EUR",
    )  # not 5 (struck through), not 12 per kg


def test_references_across_graphs_and_blocks():
    image = {"@type": "ImageObject", "@id": URL + "#img", "contentUrl": "/i/a.jpg"}
    offer = {"@type": "Offer", "@id": URL + "#offer", "price": 9.5, "priceCurrency": "USD"}
    product = {
        "@type": "Product",
        "name": "N",
        "mpn": "M-1",
        "image": [{"@id": URL + "#img"}, {"@id": "https://cdn.example/b.jpg"}],
        "offers": {"@id": URL + "#offer"},
    }
    page = _ld({"@graph": [product]}, {"@graph": [image, offer]})
    (found,), _ = extract_structured(page, URL, "m")
    assert found.image_urls == ["https://shop.example/i/a.jpg", "https://cdn.example/b.jpg"]
    assert (found.product_id, found.price, found.currency) == ("m-1", 9.5, "USD")


def test_variants_pointing_back_are_one_product():
    group = {"@type": "ProductGroup", "@id": "#g", "name": "Coat", "productGroupID": "G1"}
    variants = [
        {
            "@type": "Product",
            "isVariantOf": {"@id": "#g"},
            "sku": f"G1-{n}",
            "image": f"/v{n}.jpg",
            "offers": {"@type": "Offer", "price": p, "priceCurrency": "USD"},
        }
        for n, p in ((1, 20), (2, 15))
    ]
    (found,), _ = extract_structured(_ld({"@graph": [group, *variants]}), URL, "m")
    assert (found.product_id, found.name, found.price) == ("g1", "Coat", 15.0)
    assert found.image_urls == ["https://shop.example/v1.jpg", "https://shop.example/v2.jpg"]


def test_og_image_is_the_last_fallback_and_other_syntaxes_fill_gaps():
    head = '<meta property="og:image" content="/og.jpg">'
    (found,), _ = extract_structured(
        _ld({"@type": "Product", "name": "N", "sku": "S"}, head=head), URL, "m"
    )
    assert found.image_urls == ["https://shop.example/og.jpg"]
    page = (
        b'<html><head><script type="application/ld+json">{"@type": "Product", "name": "N", "sku": "S"}</script></head>'
        b'<body><div itemscope itemtype="https://schema.org/Product"><span itemprop="name">N</span>'
        b'<img itemprop="image" src="/md.jpg"><div itemprop="offers" itemscope itemtype="https://schema.org/Offer">'
        b'<meta itemprop="price" content="3.50"><meta itemprop="priceCurrency" content="CHF"></div></div></body></html>'
    )
    (found,), _ = extract_structured(page, URL, "m")
    assert (found.product_id, found.price, found.currency, found.image_urls) == (
        "s",
        3.5,
        "CHF",
        ["https://shop.example/md.jpg"],
    )


def test_a_breadcrumb_is_never_the_product():
    page = (
        b'<ol itemscope itemtype="https://schema.org/BreadcrumbList"><li itemprop="itemListElement" itemscope '
        b'itemtype="https://schema.org/ListItem"><span itemprop="name">Home</span></li></ol>'
        b'<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">Rocket</h1></div>'
    )
    (found,), _ = extract_structured(page, URL, "m")
    assert found.name == "Rocket"


def test_id_candidates_in_order():
    base = {"@type": "Product", "name": "N"}
    for extra, pid in [
        ({"sku": "A", "mpn": "B", "gtin13": "C"}, "a"),
        ({"mpn": "B", "gtin13": "C"}, "b"),
        ({"gtin13": "4006381333931"}, "4006381333931"),
        ({"productID": "isbn:123"}, "isbn-123"),
        ({}, "x"),
    ]:
        (found,), _ = extract_structured(_ld({**base, **extra}), URL, "m")
        assert found.product_id == pid, extra


def test_hostile_structured_data_is_a_problem_not_a_crash():
    deep = "[" * 5000 + "]" * 5000
    page = f'<script type="application/ld+json">{deep}</script><script type="application/ld+json">{{"@type": "Product", "name": "ok"}}</script>'
    products, problems = extract_structured(page.encode(), URL, "m")
    assert [p.name for p in products] == ["ok"] and "nested too deeply" in problems[0]
    cyclic = {
        "@graph": [
            {"@id": "#a", "@type": "Product", "name": "A", "image": {"@id": "#b"}},
            {"@id": "#b", "image": {"@id": "#a"}, "url": {"@id": "#a"}},
        ]
    }
    (found,), _ = extract_structured(_ld(cyclic), URL, "m")
    assert found.name == "A"


# -- prices -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint", "amount", "currency"),
    [
        ("1.299,\u2013 €", PriceHint(), 1299.0, "EUR"),
        ("1 299,00 €", PriceHint(), 1299.0, "EUR"),
        ("€1,299.00", PriceHint.of(locale="de-DE"), 1299.0, "EUR"),
        ("CHF 1'299.00", PriceHint(), 1299.0, "CHF"),
        ("ab 9,95 €", PriceHint(), 9.95, "EUR"),
        ("$12", PriceHint(), 12.0, "USD"),
        ("$12", PriceHint(currency="CAD"), 12.0, "CAD"),
        ("£7.50", PriceHint(), 7.5, "GBP"),
        ("1.299 €", PriceHint.of(locale="de-DE"), 1299.0, "EUR"),
        ("1,299", PriceHint.of(decimal_separator=","), 1.299, None),
        ("1,299", PriceHint.of(locale="en-US"), 1299.0, None),
        ("12,50 EUR", PriceHint(), 12.5, "EUR"),
    ],
)
def test_prices_by_locale(text, hint, amount, currency):
    parsed = parse_price_text(text, hint)
    assert (float(parsed.amount), parsed.currency) == (amount, currency)


def test_machine_numbers_are_read_as_written_whatever_the_hint():
    assert parse_price("1.299", PriceHint.of(locale="de-DE")) == 1.299
    assert parse_price(12) == 12.0 and parse_price(None) is None and parse_price("n/a") is None


@given(
    cents=st.integers(min_value=0, max_value=10**9),
    locale=st.sampled_from(["de-DE", "fr-FR", "en-US", "de-CH"]),
)
def test_a_price_formatted_in_its_locale_reads_back(cents, locale):
    from babel.numbers import format_currency

    text = format_currency(cents / 100, "EUR", locale=locale.replace("-", "_"))
    parsed = parse_price_text(text, PriceHint.of(locale=locale))
    assert parsed.amount is not None and round(float(parsed.amount) * 100) == cents, text
    assert parsed.currency == "EUR"


def test_css_reads_the_price_text_and_its_currency():
    catalog = CssCatalog(
        start_urls=["https://s.example"],
        product_links="a",
        name={"selector": "h1"},
        price={"selector": ".price"},
    )
    page = "<h1>Kit</h1><span class=price>ab 1.299,\u2013 €</span>".encode()
    (product,) = extract_css(page, "https://s.example/p", catalog, "m")
    assert (product.price, product.currency) == (1299.0, "EUR")


# -- registry and ids ----------------------------------------------------------------------


def test_a_jmespath_that_does_not_parse_is_named():
    text = """
vendors:
  - key: nx
    name: Nx
    catalog: {kind: embedded_json, start_urls: ["https://nx.example/"], fields: {name: "props.[title"}}
"""
    with pytest.raises(
        RegistryError, match=r"vendor 'nx': catalog.fields.name: .*'props.\[title' does not parse"
    ):
        parse_registry(text)
    with pytest.raises(RegistryError, match="unknown locale 'xx-QQ'"):
        parse_registry(
            "vendors: [{key: a, name: A, locale: xx-QQ, catalog: {kind: shopify, base_url: 'https://a.example'}}]"
        )


def test_published_ids_stay_where_they_are():
    old = Product(
        product_id="little-dog--c3-bcber",
        manufacturer="m",
        url="https://s.example/products/little-dog-%C3%BCber",
    )
    new = old.model_copy(update={"product_id": "7423861"})
    other = Product(product_id="cat-1", manufacturer="m", url="https://s.example/products/cat")
    kept = keep_published_ids(
        [new, other], {old.url: old.product_id, "https://gone.example/x": "x"}
    )
    assert [p.product_id for p in kept] == ["little-dog--c3-bcber", "cat-1"]
    # an id another product of this run holds is not taken from it
    clash = keep_published_ids([new, other], {old.url: "cat-1"})
    assert [p.product_id for p in clash] == ["7423861", "cat-1"]


def test_parse_products_keeps_published_ids():
    registry = parse_registry(
        "vendors: [{key: s, name: S, currency: USD, catalog: {kind: shopify, base_url: 'https://s.example'}}]"
    )
    vendor = registry.get("s")
    store = MemoryBlobStore()
    body = json.dumps(
        {
            "products": [
                {
                    "id": 7423861,
                    "title": "Little Dog",
                    "handle": "little-dog-über",
                    "variants": [{"price": "12.00"}],
                    "images": [],
                }
            ]
        }
    )
    store.put("p1", body.encode())
    page = PageRecord(
        url="https://s.example/products.json?page=1", role="api", key="p1", status="fetched"
    )
    (fresh,), _ = parse_products(vendor, [page], store)
    assert fresh.product_id == "7423861"
    (kept,), _ = parse_products(vendor, [page], store, {fresh.url: "little-dog--c3-bcber"})
    assert kept.product_id == "little-dog--c3-bcber"


def test_a_css_selector_that_does_not_parse_is_named():
    text = """
vendors:
  - key: a
    name: A
    catalog: {kind: css, start_urls: ["https://a.example"], product_links: "a[href", name: {selector: h1}}
"""
    with pytest.raises(RegistryError) as info:
        parse_registry(text)
    assert str(info.value) == (
        "<registry>: vendor 'a': catalog.product_links: CSS selector 'a[href' does not parse: "
        "Malformed attribute selector at position 1"
    )


def test_one_product_described_by_two_plugins_is_one_product():
    """WooCommerce's own block and an SEO plugin's graph, both naming ``#product``."""
    core = {
        "@context": "https://schema.org/",
        "@type": "Product",
        "@id": URL + "#product",
        "name": "Kit",
        "image": "https://shop.example/k.jpg",
        "sku": "K1",
        "offers": [{"@type": "Offer", "price": "19.00", "priceCurrency": "EUR"}],
    }
    seo = {
        "@context": "https://schema.org",
        "@graph": [
            {
                "@type": "Product",
                "@id": URL + "#product",
                "name": "Kit",
                "mainEntityOfPage": {"@id": URL},
            }
        ],
    }
    products, _ = extract_structured(_ld(core, seo), URL, "m")
    assert [(p.product_id, p.price, p.image_urls) for p in products] == [
        ("k1", 19.0, ["https://shop.example/k.jpg"])
    ]


def test_related_products_marked_up_on_a_product_page_are_not_its_products():
    related = "".join(
        f'<div itemscope itemtype="https://schema.org/Product"><a itemprop="url" href="/p/r{n}">'
        f'<span itemprop="name">Related {n}</span></a></div>'
        for n in (1, 2)
    )
    page = (
        '<link rel="canonical" href="https://shop.example/p/x">'
        '<div itemscope itemtype="https://schema.org/Product"><h1 itemprop="name">The kit</h1>'
        '<meta itemprop="sku" content="K1"></div>' + related
    ).encode()
    products, _ = extract_structured(page, URL, "m")
    assert [p.name for p in products] == ["The kit"]
    # a listing-like page of several products at their own URLs keeps them all
    products, _ = extract_structured(related.encode(), URL, "m")
    assert sorted(p.name for p in products) == ["Related 1", "Related 2"]
