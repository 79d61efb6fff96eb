import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from image_assets.records import Product
from image_assets.scraping.extractors import (
    discover_links,
    extract_css,
    extract_jsonld,
    extract_shopify,
    largest_srcset_candidate,
    merge_products,
    parse_price,
)
from image_assets.scraping.registry import CssCatalog, FieldSelector
from image_assets.scraping.urls import canonical_url


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$1,234.50", 1234.5),
        ("1.234,50 €", 1234.5),
        ("12", 12.0),
        (19.99, 19.99),
        ("12,5", 12.5),
        ("n/a", None),
        (None, None),
    ],
)
def test_parse_price(text, value):
    assert parse_price(text) == value


def test_largest_srcset_candidate():
    assert largest_srcset_candidate("a.jpg 400w, b.jpg 1600w, c.jpg 800w") == "b.jpg"
    assert largest_srcset_candidate("a.jpg 1x, b.jpg 2x") == "b.jpg"
    assert largest_srcset_candidate("") is None


def _page(*blocks: str) -> bytes:
    scripts = "".join(f"<script type='application/ld+json'>{b}</script>" for b in blocks)
    return f"<html><head>{scripts}</head><body></body></html>".encode()


def test_jsonld_graph_imageobject_offers_list_and_relative_urls():
    node = {
        "@type": "Product",
        "name": "  Big   Bertha ",
        "mpn": "EST 1948",
        "image": [{"@type": "ImageObject", "contentUrl": "/img/a.jpg"}, "b.jpg"],
        "offers": [
            {
                "@type": "Offer",
                "price": "42.00",
                "priceCurrency": "USD",
                "availability": "https://schema.org/InStock",
            }
        ],
    }
    html = _page("{ not json", json.dumps({"@graph": [{"@type": "BreadcrumbList"}, node]}))
    products, problems = extract_jsonld(html, "https://shop.example/p/bertha", "estes")
    assert len(problems) == 1 and "malformed JSON-LD" in problems[0]
    (product,) = products
    assert product.product_id == "est-1948"
    assert product.name == "Big Bertha"
    assert product.image_urls == ["https://shop.example/img/a.jpg", "https://shop.example/p/b.jpg"]
    assert (product.price, product.currency, product.availability) == (42.0, "USD", "InStock")


def test_jsonld_without_sku_uses_url_slug():
    html = _page(json.dumps({"@type": "Product", "name": "X", "url": "/products/alpha-iii"}))
    products, _ = extract_jsonld(html, "https://shop.example/catalog", "estes")
    assert products[0].product_id == "alpha-iii"


def test_shopify_page_variants_and_images():
    payload = json.dumps(
        {
            "products": [
                {
                    "title": "Goblin",
                    "handle": "goblin",
                    "variants": [
                        {"sku": "LOC-1", "price": "20.00", "available": False},
                        {"sku": "LOC-1B", "price": "25.00", "available": True},
                    ],
                    "images": [
                        {"src": "//cdn.example/2.jpg", "position": 2},
                        {"src": "https://cdn.example/1.jpg", "position": 1},
                    ],
                }
            ]
        }
    ).encode()
    (product,) = extract_shopify(payload, "https://loc.example", "loc")
    assert product.product_id == "loc-1"
    assert product.image_urls == ["https://cdn.example/1.jpg", "https://cdn.example/2.jpg"]
    assert product.availability == "InStock" and product.price == 20.0
    with pytest.raises(ValueError, match="no 'products'"):
        extract_shopify(b'{"items": []}', "https://loc.example", "loc")


CSS = CssCatalog(
    start_urls=["https://r.example/shop/"],
    product_links="a.title",
    next_page="a.next",
    name=FieldSelector(selector="h1"),
    sku=FieldSelector(selector=".sku"),
    price=FieldSelector(selector=".price"),
    images=FieldSelector(selector=".gallery img"),
)


def test_css_images_from_src_srcset_lazy_and_og_fallback():
    html = b"""<html><head><meta property='og:image' content='/og.jpg'></head><body>
      <h1> Der &amp; Red
        Max </h1><span class='sku'>RKT 9</span><p class='price'>$1,024.00</p>
      <div class='gallery'><img src='a.jpg'><img src='ph.gif' srcset='b-400.jpg 400w, b.jpg 1600w'>
      <img data-src='/c.jpg' src='data:image/gif;base64,R0'></div></body></html>"""
    (product,) = extract_css(html, "https://r.example/p/der.html", CSS, "rocketarium")
    assert product.name == "Der & Red Max"
    assert product.product_id == "rkt-9" and product.price == 1024.0
    assert product.image_urls == [
        "https://r.example/p/a.jpg",
        "https://r.example/p/b.jpg",
        "https://r.example/c.jpg",
    ]
    no_gallery = html.replace(b"class='gallery'", b"class='other'")
    (product,) = extract_css(no_gallery, "https://r.example/p/der.html", CSS, "rocketarium")
    assert product.image_urls == ["https://r.example/og.jpg"]


def test_css_page_without_product_gives_nothing():
    assert extract_css(b"<html><body>Sorry</body></html>", "https://r.example/x", CSS, "r") == []


def test_discover_links_resolves_relative_urls():
    html = b"<a class='title' href='/p/1'>1</a><a class='title' href='p/2'>2</a><a class='next' href='?page=2'>n</a>"
    products, nexts = discover_links(html, "https://r.example/shop/", "a.title", "a.next")
    assert products == ["https://r.example/p/1", "https://r.example/shop/p/2"]
    assert nexts == ["https://r.example/shop/?page=2"]


def test_merge_products_unions_images_and_fills_gaps():
    a = Product(product_id="x", manufacturer="m", image_urls=["1"], name=None)
    b = Product(product_id="x", manufacturer="m", image_urls=["1", "2"], name="X", price=3)
    c = Product(product_id="a", manufacturer="m")
    merged = merge_products([a, b, c])
    assert [p.product_id for p in merged] == ["a", "x"]
    assert merged[1].image_urls == ["1", "2"] and merged[1].name == "X" and merged[1].price == 3


def test_srcset_with_commas_inside_urls():
    srcset = (
        "https://res.example/image/upload/w_400,h_300,c_fill/kit.jpg 400w, "
        "https://res.example/image/upload/w_1600,h_1200,c_fill/kit.jpg 1600w"
    )
    assert (
        largest_srcset_candidate(srcset)
        == "https://res.example/image/upload/w_1600,h_1200,c_fill/kit.jpg"
    )
    assert largest_srcset_candidate("a.jpg, b.jpg 2x") == "b.jpg"
    assert largest_srcset_candidate("a.jpg,\tb.jpg 3x, c.jpg") == "b.jpg"


def test_jsonld_main_entity_product_group_and_prefixed_types():
    group = {
        "@context": "https://schema.org",
        "@type": "WebPage",
        "mainEntity": {
            "@type": "ProductGroup",
            "name": "Patriot &amp; Co",
            "productGroupID": "PAT-100",
            "hasVariant": [
                {
                    "@type": "Product",
                    "sku": "PAT-100-S",
                    "image": "s.jpg",
                    "offers": {"price": 10, "priceCurrency": "EUR"},
                },
                {"@type": "Product", "sku": "PAT-100-L", "image": "l.jpg"},
            ],
            "isSimilarTo": {"@type": "Product", "sku": "OTHER", "name": "Not this page's"},
        },
    }
    products, _ = extract_jsonld(
        _page(json.dumps(group)), "https://shop.example/p/patriot", "estes"
    )
    (product,) = products
    assert product.product_id == "pat-100" and product.name == "Patriot & Co"
    assert product.image_urls == ["https://shop.example/p/s.jpg", "https://shop.example/p/l.jpg"]
    assert (product.price, product.currency) == (10.0, "EUR")
    typed = _page(
        json.dumps(
            {"@type": ["schema:Product"], "name": "T", "sku": "T1", "description": "multi\nline"}
        ).replace("\\n", "\n")
    )
    assert [p.product_id for p in extract_jsonld(typed, "https://s.example/t", "m")[0]] == ["t1"]


def test_itemlist_links_on_listing_pages():
    itemlist = {
        "@type": "ItemList",
        "itemListElement": [
            {"@type": "ListItem", "position": 1, "url": "/p/a"},
            {
                "@type": "ListItem",
                "position": 2,
                "item": {"@id": "x", "url": "https://s.example/p/b"},
            },
        ],
    }
    products, _ = discover_links(
        _page(json.dumps(itemlist)), "https://s.example/list", "a.none", None
    )
    assert products == ["https://s.example/p/a", "https://s.example/p/b"]


# -- canonical product URLs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "https://Shop.Example:443/products/mach1?utm_source=list",
            "https://shop.example/products/mach1",
        ),
        (
            "https://shop.example/products/mach1?ref=home#reviews",
            "https://shop.example/products/mach1",
        ),
        ("https://shop.example/p?b=2&gclid=x&a=1&fbclid=y", "https://shop.example/p?a=1&b=2"),
        ("https://shop.example/p?mc_cid=1&mc_eid=2&color=red", "https://shop.example/p?color=red"),
        ("http://shop.example:8080/p", "http://shop.example:8080/p"),
        (
            "https://shop.example/fusée/ünï?q=é",
            "https://shop.example/fus%C3%A9e/%C3%BCn%C3%AF?q=%C3%A9",
        ),
        ("https://bücher.example/a b", "https://xn--bcher-kva.example/a%20b"),
        ("https://shop.example/already%20encoded", "https://shop.example/already%20encoded"),
        ("mailto:someone@example.com", "mailto:someone@example.com"),
    ],
)
def test_canonical_urls(url, canonical):
    assert canonical_url(url) == canonical
    assert canonical_url(canonical) == canonical  # idempotent


@given(st.text(max_size=60), st.lists(st.sampled_from(["utm_source=x", "ref=y", "gclid=z", "a=1"])))
def test_canonical_urls_are_ascii_and_stable(path, params):
    url = "https://shop.example/" + path + ("?" + "&".join(params) if params else "")
    once = canonical_url(url)
    assert once.isascii() or not once.startswith("https://")
    assert canonical_url(once) == once


def test_tracking_links_give_one_product():
    listing = b"""<html><body>
      <a class="p" href="/products/mach1?utm_source=list&utm_medium=grid">Mach 1</a>
      <a class="p" href="/products/mach1?ref=home">Mach 1 again</a>
      <a class="p" href="/products/mach1#reviews">reviews</a>
      <a class="p" href="/products/mach2?gclid=abc&amp;color=red">Mach 2</a>
    </body></html>"""
    products, _ = discover_links(listing, "https://shop.example/catalog", "a.p", None)
    assert products == [
        "https://shop.example/products/mach1",
        "https://shop.example/products/mach2?color=red",
    ]


def test_a_page_canonical_link_names_the_product():
    page = b"""<html><head>
      <link rel="canonical" href="https://shop.example/products/mach-1">
      <meta property="og:url" content="https://shop.example/other">
    </head><body><h1>Mach 1</h1><img class="g" src="/i/1.jpg"></body></html>"""
    catalog = CssCatalog(
        start_urls=["https://shop.example/"],
        product_links="a.p",
        name=FieldSelector(selector="h1"),
        images=FieldSelector(selector="img.g"),
    )
    a = extract_css(page, "https://shop.example/products/mach-1?utm_campaign=x", catalog, "v")
    b = extract_css(page, "https://shop.example/collections/rockets/mach-1", catalog, "v")
    assert a[0].url == b[0].url == "https://shop.example/products/mach-1"
    assert a[0].product_id == b[0].product_id == "mach-1"
    assert len(merge_products([*a, *b])) == 1
    og_only = page.replace(
        b'<link rel="canonical" href="https://shop.example/products/mach-1">', b""
    )
    (c,) = extract_css(og_only, "https://shop.example/x?ref=1", catalog, "v")
    assert c.url == "https://shop.example/other"
    jsonld = _page('{"@type": "Product", "name": "Mach 1", "image": "/i/1.jpg"}')
    (d,), _ = extract_jsonld(jsonld, "https://shop.example/products/mach-1?fbclid=1", "v")
    assert d.url == "https://shop.example/products/mach-1" and d.product_id == "mach-1"


def test_a_fixed_currency_fills_pages_without_one_for_every_kind():
    from image_assets.records import PageRecord
    from image_assets.scraping.crawl import parse_products
    from image_assets.scraping.registry import RegistryError, parse_registry
    from image_assets.storage import MemoryBlobStore

    registry = parse_registry(
        """
vendors:
  - key: css-shop
    name: CSS shop
    currency: USD
    catalog:
      kind: css
      start_urls: ["https://shop.example/"]
      product_links: a
      name: {selector: h1}
      price: {selector: .price}
      currency: {selector: "meta[itemprop=priceCurrency]", attr: content}
  - key: ld-shop
    name: JSON-LD shop
    currency: CAD
    catalog: {kind: jsonld, start_urls: ["https://ld.example/"]}
"""
    )
    store = MemoryBlobStore()
    store.put("a", b"<h1>A</h1><span class=price>$210.00</span>")
    store.put(
        "b", b'<h1>B</h1><meta itemprop=priceCurrency content="EUR"><span class=price>9</span>'
    )
    store.put("c", _page('{"@type": "Product", "name": "C", "offers": {"price": "5"}}'))
    pages = [
        PageRecord(url="https://shop.example/a", role="product", key="a", status="fetched"),
        PageRecord(url="https://shop.example/b", role="product", key="b", status="fetched"),
    ]
    products, _ = parse_products(registry.get("css-shop"), pages, store)
    assert {(p.name, p.price, p.currency) for p in products} == {
        ("A", 210.0, "USD"),  # the page names none: the registry's
        ("B", 9.0, "EUR"),  # the page's own wins
    }
    ld_page = PageRecord(url="https://ld.example/c", role="product", key="c", status="fetched")
    (product,), _ = parse_products(registry.get("ld-shop"), [ld_page], store)
    assert product.currency == "CAD"
    bad = "vendors: [{key: a, name: a, currency: dollars, catalog: {kind: shopify, base_url: u}}]"
    with pytest.raises(RegistryError, match=r"vendor 'a': currency: String should match"):
        parse_registry(bad)
