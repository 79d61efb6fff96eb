"""``image-assets probe``: one command finds how to read a shop; its entry, pasted, reads it all."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from image_assets.cli import main
from image_assets.scraping.crawl import crawl_vendor, http_settings_for, parse_products
from image_assets.scraping.http import HttpClient, HttpSettings
from image_assets.scraping.registry import parse_registry
from image_assets.storage import MemoryBlobStore
from image_assets_tests.storefronts import Storefronts, found, storefront_server, wanted

MARKER = "# registry entry ("


@pytest.fixture(scope="module")
def shops() -> Iterator[Storefronts]:
    with storefront_server() as server:
        yield server


def _probe(capsys, *args: str) -> tuple[int, str]:
    code = main(["probe", *args, "--allow-private", "127.0.0.0/8"])
    return code, capsys.readouterr().out


def _entry(out: str) -> dict:
    text = out[out.index(MARKER) :]
    (entry,) = yaml.safe_load(text)
    return entry


def _scrape(entry: dict):
    vendor = parse_registry(yaml.safe_dump({"vendors": [entry]})).get(entry["key"])
    store = MemoryBlobStore()
    with HttpClient(http_settings_for(vendor, HttpSettings(max_retries=0))) as client:
        crawl = crawl_vendor(vendor, client, store)
    return parse_products(vendor, crawl.pages, store)


@pytest.mark.parametrize(
    ("path", "listing", "kind", "want"),
    [
        ("/woo/shop/", True, "woocommerce", "woo"),
        ("/alt/katalog.php", True, "structured", "alt"),
        ("/modern/", True, "structured", "modern"),
        ("/next/rockets", True, "embedded_json", "next"),
        ("/next/state/vega", False, "embedded_json", "next-state"),
        ("/nuxt/products/orbit", False, "embedded_json", "nuxt"),
        ("/shopify/products/big-cat", False, "shopify", "shopify"),
    ],
)
def test_the_printed_entry_reads_every_product(shops, capsys, path, listing, kind, want):
    args = [shops.url(path), "--key", want]
    code, out = _probe(capsys, *args, *(["--listing"] if listing else []))
    assert code == 0, out
    entry = _entry(out)
    assert entry["catalog"]["kind"] == kind, out
    assert entry["allow_private_networks"] == ["127.0.0.0/8"]
    if want == "shopify":
        entry["currency"] = "USD"  # products.json names none: the probe says so, a person adds it
        assert "names no currency" in out
    products, problems = _scrape(entry)
    assert found(products, shops.base) == wanted(shops.base, want), (out, problems)


def test_it_says_what_each_kind_found(shops, capsys):
    code, out = _probe(capsys, shops.url("/alt/artikel.php?id=8"), "--no-platforms")
    assert code == 0
    assert f"answered from {shops.url('/alt/raketen/blitz.html')}" in out
    assert "charset=windows-1252, read as cp1252" in out
    assert "kind structured: 1 product\n  (found in microdata: 1)" in out
    assert "'Große Rakete „Blitz“': 1049.95 EUR, id gr-blitz, 1 images" in out
    assert "kind embedded_json: 0 products" in out
    assert "kind shopify" not in out  # --no-platforms


def test_a_page_no_kind_reads_is_one_clear_answer(shops, capsys):
    shops.page("/empty", "<html><body><p>Gone fishing</p></body></html>")
    code, out = _probe(capsys, shops.url("/empty"), "--no-platforms")
    assert code == 1 and "no kind found a product here" in out


def test_unreachable_and_refused_urls_are_one_line(capsys):
    assert main(["probe", "http://169.254.169.254/latest/meta-data/"]) == 1
    assert "refused link-local" in capsys.readouterr().err
    assert main(["probe", "file:///etc/passwd"]) == 1
    assert "refused scheme 'file'" in capsys.readouterr().err
    assert main(["probe", "https://x.example/", "--allow-private", "not-a-cidr"]) == 2
    assert main(["probe", "https://x.example/", "--key", "Bad Key"]) == 2
