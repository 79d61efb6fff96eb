"""The catalog gallery: its HTML as a pure function, its catalog reads, and the page in a
real browser (Debian's chromium, driven by Playwright) over the demo's catalog, served
by a real ``image-assets serve`` process."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from image_assets.delivery.catalog_view import (
    Catalog,
    CatalogReader,
    FailedImage,
    ShownImage,
    ShownProduct,
    read_catalog,
)
from image_assets.delivery.gallery import candidates, index_page, product_page
from image_assets.imaging.config import load_rendition_config
from image_assets_tests.processes import free_port, wait_until_up

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("IMAGE_ASSETS_TEST_ARTIFACTS") or REPO / "test-artifacts")
SPECS = list(load_rendition_config().renditions)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's own probe starts it: no sandbox as root, and nothing that calls out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _image(
    public_id: str, width: int = 1200, height: int = 900, lqip: str | None = "data:x"
) -> ShownImage:
    base = f"https://cdn.example/{public_id}"
    return ShownImage(
        public_id=public_id,
        url=base + ".jpg",
        width=width,
        height=height,
        renditions={
            f"{name}.{fmt}": f"{base}/{name}.{fmt}"
            for name in ("thumb_200", "thumb_300", "w400", "w800", "w1600")
            for fmt in ("webp", "jpeg")
        },
        lqip=lqip,
    )


def test_srcset_candidates_carry_the_width_each_rendition_really_has():
    found = candidates(_image("kits/estes/a", 1200, 900), SPECS)
    assert [w for w, _ in found["webp"]] == [400, 800, 1200]  # 1600 limit of 1200: 1200
    assert [w for w, _ in found["jpeg"]] == [400, 800, 1200]
    assert all(url.endswith(".webp") for _, url in found["webp"])
    small = candidates(_image("kits/estes/small", 300, 200), SPECS)  # every limit gives 300
    assert small["webp"] == [(300, "https://cdn.example/kits/estes/small/w400.webp")]


def test_index_escapes_what_vendors_write_and_filters_by_name_and_maker():
    hostile = ShownProduct(
        product_id='p"1',
        name='<img src=x onerror="alert(1)">Rocket',
        manufacturer="estes",
        price=9.5,
        currency="USD",
        url="javascript:alert(1)",
        images=[_image("kits/estes/p1", lqip="data:image/webp;base64,AAAA')x")],
        failed=[FailedImage(2, "failed", "HTTP 404 <b>")],
    )
    other = ShownProduct("q", "Big Bertha", "loc", None, None, None, [])
    catalog = Catalog([hostile, other], time.time())
    page = index_page(catalog, SPECS)
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "HTTP 404 &lt;b&gt;" in page and "')x" not in page
    assert page.count("<article") == 2 and 'loading="lazy"' in page
    assert 'width="1200" height="900"' in page
    only_bertha = index_page(catalog, SPECS, query="bertha")
    assert only_bertha.count("<article") == 1 and "Big Bertha" in only_bertha
    assert index_page(catalog, SPECS, manufacturer="loc").count("<article") == 1
    nothing = index_page(catalog, SPECS, query="<script>")
    assert "No product name contains" in nothing and "<script>" not in nothing
    detail = product_page(hostile, SPECS)
    assert "javascript:" not in detail  # a vendor's link is kept only when it is http(s)
    assert detail.count("<tr><td>") == 10  # every rendition listed


def test_product_page_does_not_link_a_script_url():
    product = ShownProduct("p", "P", "m", None, None, "javascript:alert(1)", [])
    assert "javascript:" not in product_page(product, SPECS)


def test_a_busy_catalog_gives_the_last_good_read(tmp_path):
    db = tmp_path / "catalog.duckdb"
    assert read_catalog(db).missing  # nothing materialized yet: said, not an error
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE clean_kits AS SELECT 'p1' product_id, 'Rocket' name, 'estes' manufacturer,"
            " 1.5 price, 'USD' currency, NULL url, CAST('[]' AS JSON) images"
        )
    reader = CatalogReader(db, max_age=0)
    assert [p.name for p in reader.get().products] == ["Rocket"]
    writer = duckdb.connect(str(db))  # a run holding the file for writing
    try:
        busy = reader.get()
    finally:
        writer.close()
    assert busy.stale and [p.name for p in busy.products] == ["Rocket"]
    assert not reader.get().stale


# ------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def demo_service(tmp_path_factory):
    """The demo's catalog (`image-assets demo`), then `image-assets serve` on the port
    the demo's links point at."""
    root = tmp_path_factory.mktemp("gallery")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(root / "home"),
        "IMAGE_ASSETS_DATA_DIR": str(root / "data"),
        "IMAGE_ASSETS_PROFILE": "local",
    }
    (root / "home").mkdir()
    shutil.copy(REPO / "dagster.yaml", root / "home" / "dagster.yaml")
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "image_assets.cli",
            "demo",
            "--port",
            str(free_port()),
            "--delivery-port",
            str(port),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    log = (root / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port), "--workers", "1"],
        cwd=root,
        env={**env, "IMAGE_ASSETS_DELIVERY_URL": f"http://127.0.0.1:{port}"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/healthz", serve)
    yield {
        "base": base,
        "root": root,
        "env": env,
        "data": root / "data",
        "demo_output": demo.stdout,
    }
    serve.terminate()
    serve.wait(timeout=20)
    log.close()


def _browser(playwright):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


ALL_DECODED = "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"


def test_the_demo_leaves_the_incoming_folder_it_names_and_the_gallery_link(demo_service):
    incoming = demo_service["data"] / "incoming"
    assert incoming.is_dir() and not any(incoming.iterdir())
    assert f"drop images into {incoming}/" in demo_service["demo_output"]
    assert "/gallery" in demo_service["demo_output"]


def test_the_gallery_in_chromium_placeholders_first_then_every_image(demo_service):
    from playwright.sync_api import sync_playwright

    base = demo_service["base"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 7000})  # every card in view
        held: list = []
        holding = True

        def hold(route) -> None:  # hold the images back: only the placeholders show
            if holding:
                held.append(route)
            else:
                route.continue_()

        page.route("**/image/upload/**", hold)
        page.goto(f"{base}/gallery", wait_until="domcontentloaded")
        page.wait_for_function("document.images.length > 0")
        before = page.evaluate(
            """Array.from(document.querySelectorAll('img')).map(i => ({
                decoded: i.naturalWidth, bg: getComputedStyle(i).backgroundImage,
                width: i.getAttribute('width'), height: i.getAttribute('height'),
                lazy: i.loading, srcset: i.srcset, sizes: i.sizes}))"""
        )
        assert len(before) >= 10, before  # the demo: 18 products with a picture
        for img in before:
            assert img["decoded"] == 0, img  # nothing has arrived yet...
            assert img["bg"].startswith('url("data:image/webp;base64,'), img  # ...the LQIP shows
            assert img["width"] and img["height"] and img["lazy"] == "lazy"
            assert re.fullmatch(r"\S+ \d+w(, \S+ \d+w)*", img["srcset"]) and img["sizes"], img
        assert max(len(img["srcset"].split(", ")) for img in before) >= 3  # 400, 800, 1200+
        page.screenshot(path=str(ARTIFACTS / "gallery-placeholders.png"))
        holding = False
        for route in held:
            route.continue_()
        page.wait_for_function(ALL_DECODED, timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=True)
        webp = page.evaluate("Array.from(document.images).map(i => i.currentSrc)")
        assert all("f_webp" in src for src in webp), webp  # <picture> gave chromium WebP
        failures = page.locator("li.failed").all_inner_texts()
        assert any("HTTP 404" in text for text in failures), failures

        page.goto(f"{base}/gallery?q=alpha")
        names = page.locator("article h3").all_inner_texts()
        assert names and all("alpha" in name.lower() for name in names), names

        page.goto(f"{base}/gallery?m=loc")
        page.locator("article h3 a").first.click()
        page.wait_for_function(ALL_DECODED, timeout=60_000)
        rows = page.locator("table tr td:first-child").all_inner_texts()
        assert len(rows) == 10 * page.locator("figure").count(), rows  # every rendition listed
        for url in page.locator("table a").evaluate_all("links => links.map(a => a.href)"):
            assert httpx.get(url).status_code == 200, url  # and every one opens
        page.screenshot(path=str(ARTIFACTS / "gallery-product.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "gallery.png").stat().st_size > 10_000


def test_the_kits_csv_preview_in_the_dagster_ui_shows_thumbnails(demo_service):
    """dagster-webserver on the demo's instance: the kits_csv preview (Markdown) shows
    each thumbnail as an image the browser loads from the image service."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = (demo_service["root"] / "webserver.log").open("w")
    webserver = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            *("-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")),
        ],
        cwd=demo_service["root"] / "home",
        env={**demo_service["env"], "IMAGE_ASSETS_DELIVERY_URL": demo_service["base"]},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/server_info", webserver, seconds=120)
        with sync_playwright() as playwright:
            browser = _browser(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            skip = page.get_by_role("button", name="Skip")  # Dagster's community sign-up
            page.add_locator_handler(skip, lambda button: button.click())
            page.goto(f"http://127.0.0.1:{port}/assets/kits_csv?partition=estes&view=events")
            show = page.get_by_text("[Show Markdown]").first
            show.wait_for(timeout=90_000)
            cells = page.locator("td").all_inner_texts()
            assert "duration_s" in cells and "bytes_out" in cells and "duration" not in cells
            show.click()
            # the preview's dialog (Dagster's community sign-up is a dialog too, and may
            # open over it at any moment)
            dialog = page.get_by_role("dialog").filter(has_text="thumbnail")
            dialog.locator("img").first.wait_for(timeout=30_000)
            page.wait_for_function(
                "() => { const preview = Array.from(document.querySelectorAll('[role=dialog]'))"
                ".find(d => d.innerText.includes('thumbnail'));"
                " const imgs = preview ? preview.querySelectorAll('img') : [];"
                " return imgs.length >= 5 && Array.from(imgs).every("
                "i => i.complete && i.naturalWidth > 0) }",
                timeout=60_000,
            )
            sources = dialog.locator("img").evaluate_all("imgs => imgs.map(i => i.src)")
            assert all(src.startswith(demo_service["base"] + "/image/upload/") for src in sources)
            assert "image 2: HTTP 404" in dialog.inner_text()
            # the sign-up may have opened after the preview: keep it out of the picture (the
            # handler above may have closed it first, and then there is nothing to click)
            with contextlib.suppress(PlaywrightError):
                skip.click(timeout=2_000)
            page.screenshot(path=str(ARTIFACTS / "dagster-kits-csv-preview.png"))
            browser.close()
    finally:
        webserver.terminate()
        webserver.wait(timeout=30)
        log.close()
