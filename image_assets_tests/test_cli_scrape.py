"""`image-assets scrape`: trying a registry entry from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _scrape(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "image_assets.cli", "scrape", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_scrape_prints_products_as_json_lines(demo_server):
    result = _scrape("--vendor", "estes", env={"IMAGE_ASSETS_DEMO_URL": demo_server.base_url})
    assert result.returncode == 0, result.stderr
    products = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(products) == len(demo_server.httpd.sites.products["estes"])
    first = products[0]
    assert {"product_id", "name", "manufacturer", "url", "image_urls", "price", "currency"} <= set(
        first
    )
    assert first["manufacturer"] == "estes" and first["currency"] == "USD"
    assert "estes: 9 products" in result.stderr


def test_scrape_limit_and_custom_registry(demo_server, tmp_path):
    registry = tmp_path / "vendors.yaml"
    registry.write_text(
        f"""
vendors:
  - key: shop
    name: A Shopify shop
    allow_private_networks: [127.0.0.0/8]
    catalog: {{kind: shopify, base_url: "{demo_server.base_url}/loc", page_size: 4}}
"""
    )
    result = _scrape("--vendor", "shop", "--registry", str(registry), "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_scrape_unreachable_catalog_exits_nonzero_with_a_message(tmp_path):
    registry = tmp_path / "vendors.yaml"
    registry.write_text(
        """
vendors:
  - key: gone
    name: Gone
    allow_private_networks: [127.0.0.0/8]
    http: {read_timeout: 1}
    catalog: {kind: jsonld, start_urls: ["http://127.0.0.1:9/catalog"]}
"""
    )
    result = _scrape("--vendor", "gone", "--registry", str(registry))
    assert result.returncode == 1
    assert "catalog of vendor 'gone' cannot be fetched" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_scrape_unknown_vendor(tmp_path):
    result = _scrape("--vendor", "nope")
    assert result.returncode == 2 and "unknown vendor 'nope'" in result.stderr
