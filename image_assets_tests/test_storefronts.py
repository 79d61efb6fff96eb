"""Shops built like the common platforms build them, crawled over real HTTP on 127.0.0.1.

Every product must come out with the right name, price, currency, id and every image,
declared with only what the README documents (see ``storefronts.py`` for the shapes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from image_assets.scraping.cache import ValidatorCache
from image_assets.scraping.crawl import crawl_vendor, http_settings_for, parse_products
from image_assets.scraping.http import HttpClient, HttpSettings
from image_assets.scraping.registry import Registry, parse_registry
from image_assets.steps.originals import fetch_originals
from image_assets.storage import LocalBlobStore
from image_assets_tests.processes import VENDOR_RUN
from image_assets_tests.storefronts import (
    Storefronts,
    _next_page,
    expected,
    found,
    registry_yaml,
    storefront_server,
    wanted,
)


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


VENDORS = [
    "woo",
    "woo-pages",
    "alt",
    "modern",
    "next",
    "next-listing",
    "next-state",
    "nuxt",
    "shopify",
]


@pytest.mark.parametrize("key", VENDORS)
def test_every_product_comes_out_right(shops, registry, key, tmp_path):
    _crawl, products, problems = _scrape(registry, key, LocalBlobStore(tmp_path))
    assert found(products, shops.base) == wanted(shops.base, key), problems
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
    initiator = "/woo/wp-content/uploads/2026/03/initiator.jpg"
    at_start = shops.hits.get(initiator, 0)
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
    assert shops.hits[initiator] - at_start == 2  # two vendors, one GET each


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


# -- end to end: the kits CSV and clean_kits in a real Dagster instance ----------------


def _materialize(registry_path, data_dir, home, partition) -> dict:
    """One vendor partition in a real Dagster instance, in a process of its own: the
    manufacturer partitions come from IMAGE_ASSETS_REGISTRY when the definitions load,
    as they do for a user who declares their vendors."""
    env = {
        **os.environ,
        "IMAGE_ASSETS_REGISTRY": str(registry_path),
        "DAGSTER_HOME": str(home),
        "IMAGE_ASSETS_PROFILE": "local",
    }
    done = subprocess.run(
        [sys.executable, "-c", VENDOR_RUN, partition, str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


E2E_VENDORS = ["woo", "alt", "next", "shopify"]


def test_kits_csv_and_clean_kits_hold_every_product(shops, tmp_path):
    import duckdb

    from image_assets.catalog.duckdb_catalog import sync_clean_kits
    from image_assets.catalog.kits_csv import parse_csv

    registry_path = tmp_path / "vendors.yaml"
    registry_path.write_text(registry_yaml(shops.base))
    data_dir, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    want = expected(shops.base)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    initiator = "/woo/wp-content/uploads/2026/03/initiator.jpg"
    hits_before = shops.hits.get(initiator, 0)
    for key in E2E_VENDORS:
        run = _materialize(registry_path, data_dir, home, key)
        assert run["success"], (key, run["logs"][-20:])
        assert run["checks"]["scraper_not_broken"] is True, key
        rows = parse_csv((data_dir / f"raw/kits/{key}_kits.csv").read_bytes())
        assert {
            r["product_id"]: (
                r["name"],
                float(r["price"]),
                r["currency"],
                len(json.loads(r["images"])),
            )
            for r in rows
        } == {k: (e.name, e.price, e.currency, len(e.images)) for k, e in want[key].items()}
    # the Initiator's photo is shared by two Woo products: one download in the run
    assert shops.hits[initiator] - hits_before == 1
    raw = LocalBlobStore(data_dir / "raw")
    sync_clean_kits(data_dir / "catalog.duckdb", raw, E2E_VENDORS)  # what clean_kits runs
    with duckdb.connect(str(data_dir / "catalog.duckdb"), read_only=True) as con:
        table = {
            (m, pid): (name, price, currency)
            for m, pid, name, price, currency in con.execute(
                "select manufacturer, product_id, name, price, currency from clean_kits"
            ).fetchall()
        }
    assert table == {
        (m, k): (e.name, e.price, e.currency) for m in E2E_VENDORS for k, e in want[m].items()
    }

    # a re-run downloads nothing and leaves the CSV byte-identical
    csv = data_dir / "raw/kits/next_kits.csv"
    before = csv.read_bytes()
    again = _materialize(registry_path, data_dir, home, "next")
    assert again["metadata"]["vendor_pages"]["pages_fetched"] == 0
    assert again["metadata"]["product_images"]["images_downloaded"] == 0
    assert csv.read_bytes() == before

    # the shop renames a field of its page data: the breakage check fails, loudly,
    # and the published CSV stays as it was
    saved = dict(shops.routes)
    try:
        for item in shops.NEXT_PRODUCTS:
            renamed = {("productTitle" if k == "title" else k): v for k, v in item.items()}
            data = {"props": {"pageProps": {"product": renamed}}, "buildId": "b2"}
            shops.page(f"/next/products/{item['handle']}", _next_page(data, "<div></div>"))
        broken = _materialize(registry_path, data_dir, home, "next")
    finally:
        shops.routes = saved
    assert broken["checks"]["scraper_not_broken"] is False
    logs = "\n".join(broken["logs"])
    assert "fields.name expression 'title' found nothing" in logs
    assert "has: handle, id, images, price, productTitle" in logs
    assert csv.read_bytes() == before

    # an id made by an earlier rule (the percent-escaped handle) stays where it was
    # published: the product and its CDN image keep it
    shop_csv = data_dir / "raw/kits/shopify_kits.csv"
    shop_csv.write_bytes(shop_csv.read_bytes().replace(b"7423861", b"little-dog--c3-bcber"))
    kept = _materialize(registry_path, data_dir, home, "shopify")
    assert kept["success"]
    rows = {r["product_id"]: r for r in parse_csv(shop_csv.read_bytes())}
    assert set(rows) == {"little-dog--c3-bcber", "cat-1"}
    (image,) = json.loads(rows["little-dog--c3-bcber"]["images"])
    assert image["public_id"] == "kits/shopify/little-dog--c3-bcber"


def test_scrape_prints_what_the_shop_says(shops, tmp_path, capsys):
    from image_assets.cli import main

    registry_path = tmp_path / "vendors.yaml"
    registry_path.write_text(registry_yaml(shops.base))
    assert main(["scrape", "--vendor", "alt", "--registry", str(registry_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    want = expected(shops.base)["alt"]
    assert {p["product_id"]: (p["name"], p["price"], p["currency"]) for p in lines} == {
        k: (e.name, e.price, e.currency) for k, e in want.items()
    }
