"""Shops built like the common platforms build them, crawled over real HTTP on 127.0.0.1.

Every product must come out with the right name, price, currency, id and every image,
declared with only what the README documents (see ``storefronts.py`` for the shapes).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.crawl import crawl_vendor, http_settings_for, parse_products
from image_assets.scraping.http import HttpClient, HttpSettings
from image_assets.scraping.registry import Registry, parse_registry
from image_assets.steps.originals import fetch_originals
from image_assets.storage import LocalBlobStore
from image_assets_tests.storefronts import Storefronts, expected, registry_yaml, storefront_server


@pytest.fixture(scope="module")
def shops() -> Iterator[Storefronts]:
    with storefront_server() as server:
        yield server


@pytest.fixture(scope="module")
def registry(shops) -> Registry:
    return parse_registry(registry_yaml(shops.base))


def _scrape(registry: Registry, key: str, store):
    vendor = registry.get(key)
    settings = http_settings_for(vendor, HttpSettings(max_retries=0))
    with HttpClient(settings) as client:
        crawl = crawl_vendor(vendor, client, store)
    return crawl, *parse_products(vendor, crawl.pages, store)


VENDORS = ["woo", "woo-pages", "alt", "modern", "next", "next-state", "shopify"]


@pytest.mark.parametrize("key", VENDORS)
def test_every_product_comes_out_right(shops, registry, key, tmp_path):
    _crawl, products, problems = _scrape(registry, key, LocalBlobStore(tmp_path))
    want = expected(shops.base)[key]
    got = {
        p.product_id: (
            p.name,
            p.price,
            p.currency,
            tuple(u.removeprefix(shops.base) for u in p.image_urls),
        )
        for p in products
    }
    assert got == {k: (e.name, e.price, e.currency, e.images) for k, e in want.items()}, problems
    assert not problems


def test_redirected_pages_keep_the_url_that_answered(shops, registry, tmp_path):
    crawl, products, _ = _scrape(registry, "alt", LocalBlobStore(tmp_path))
    finals = {
        p.url.removeprefix(shops.base): (p.final_url or "").removeprefix(shops.base)
        for p in crawl.pages
    }
    assert finals["/alt/artikel.php?id=7"] == "/alt/raketen/premiere.html"  # 301, relative Location
    assert finals["/alt/artikel.php?id=8"] == "/alt/raketen/blitz.html"  # 302 -> 307
    assert finals["/alt/artikel.php?id=9"].startswith("/alt/raketen/fus%C3%A9e")  # 308, absolute
    # products are known by the page's own URL, not the old one that was linked
    assert {p.url.removeprefix(shops.base) for p in products} >= {"/alt/raketen/premiere.html"}


def test_every_image_of_every_shop_downloads_and_shared_urls_once(shops, registry, tmp_path):
    store = LocalBlobStore(tmp_path)
    for key in VENDORS:
        vendor = registry.get(key)
        _crawl, products, _ = _scrape(registry, key, store)
        before = dict(shops.hits)
        with HttpClient(http_settings_for(vendor, HttpSettings(max_retries=0))) as client:
            records, stats = fetch_originals(
                products,
                client,
                store,
                ValidatorCache(store, f"images-{key}.json"),
                say=lambda m: None,
            )
        assert [r.reason for r in records if r.status != "ok"] == [], key
        fetched = {p: n - before.get(p, 0) for p, n in shops.hits.items() if n != before.get(p, 0)}
        assert all(n == 1 for n in fetched.values()), (key, fetched)  # one GET per distinct URL
        assert stats.downloaded == len({r.source_url for r in records})
    # the WooCommerce shop shows the Initiator's photo on two products: fetched once per run
    assert shops.hits["/woo/wp-content/uploads/2026/03/initiator.jpg"] == 2  # two vendors, one each


def test_the_store_api_is_read_to_its_last_page_and_no_further(shops, registry, tmp_path):
    _scrape(registry, "woo", LocalBlobStore(tmp_path))
    api = {p: n for p, n in shops.hits.items() if "/wp-json/" in p}
    assert sorted(api) == [
        "/woo/wp-json/wc/store/v1/products?page=1&per_page=2",
        "/woo/wp-json/wc/store/v1/products?page=2&per_page=2",
    ]


@pytest.mark.parametrize("key", VENDORS)
def test_a_rerun_is_answered_by_304s_and_reads_the_same(shops, registry, key, tmp_path):
    store = LocalBlobStore(tmp_path)
    _c, first, _ = _scrape(registry, key, store)
    crawl, second, _ = _scrape(registry, key, store)
    assert second == first
    assert {p.status for p in crawl.pages} == {"not_modified"}
    assert crawl.stats.bytes_fetched == 0
