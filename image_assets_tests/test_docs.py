"""The docs are run: every fenced block of README.md and deploy/README.md is either
run by a test (named below) or says why it cannot be, and a new block fails
until it is one or the other.

The registry example runs against a local site that serves what each example
vendor's settings expect (a Shopify collection, JSON-LD product pages, CSS
product pages); only its hosts are pointed at 127.0.0.1 and private addresses
allowed. Commands run as written, through a shell, from a folder whose
``.venv`` is the project's.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import yaml

from image_assets.demo.images import ImageSpec, render_image
from image_assets.demo.serving import serve
from image_assets_tests.processes import free_port

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "deploy/README.md")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# The first line of every fenced block -> the test that runs it, or why none can.
RUN_BY = {
    "vendor_pages → vendor_products": "a diagram, not a command",
    "make demo": "test_cli_demo.py::test_make_demo_twice_second_run_is_free; make test: .ci/run",
    '.venv/bin/python -c "import duckdb': "test_cli_demo.py::test_make_demo_twice_second_run_is_free",
    ".venv/bin/image-assets scrape": "test_docs.py::test_the_registry_example_scrapes_a_local_site",
    "vendors:": "test_docs.py::test_the_registry_example_scrapes_a_local_site",
    ".venv/bin/image-assets probe": "test_docs.py::test_the_probe_command_prints_an_entry_that_reads_the_shop",
    "export IMAGE_ASSETS_PROFILE=aws": "test_docs.py::test_the_aws_example_starts_the_ui_on_moto",
    ".venv/bin/image-assets render": "test_docs.py::test_the_render_command_as_written",
    ".venv/bin/image-assets serve": "test_delivery.py::test_every_sdk_url_for_the_configured_renditions_is_served",
    ".venv/bin/python -m pytest image_assets_tests/test_gallery.py": (
        "test_gallery.py::test_the_gallery_in_chromium_placeholders_first_then_every_image "
        "(the command runs that module; make test runs it too)"
    ),
    "$ .venv/bin/python benchmarks/upload_burst.py": "test_docs.py::test_the_benchmark_command_runs",
    "$ .venv/bin/python benchmarks/tags.py": "test_docs.py::test_the_tags_benchmark_runs",
    "$ .venv/bin/python benchmarks/delivery.py": (
        "test_docs.py::test_the_thumbor_benchmark_commands_run"
    ),
    "$ .venv/bin/python benchmarks/scale.py": (
        "test_docs.py::test_the_scale_benchmark_runs and "
        "test_docs.py::test_the_scale_benchmark_drains_a_burst_with_earlier_uploads_known"
    ),
    "make lint": "test_docs.py::test_the_developer_commands (make lint, make typecheck: .ci/run)",
    "docker compose": (
        "needs a Docker engine (none on the CI machines); what `config` validates is "
        "test_deploy.py::test_compose_file_matches_the_compose_specification"
    ),
}


def fenced_blocks() -> list[tuple[str, str, str]]:
    """(doc, language, text) of every fenced block."""
    return [
        (doc, lang, text)
        for doc in DOCS
        for lang, text in FENCE.findall((REPO / doc).read_text(encoding="utf-8"))
    ]


def block(first_line: str) -> str:
    (text,) = [t for _, _, t in fenced_blocks() if t.startswith(first_line)]
    return text


def test_every_block_of_the_docs_is_run_by_a_test():
    blocks = fenced_blocks()
    assert len(blocks) >= 10
    for doc, _, text in blocks:
        keys = [k for k in RUN_BY if text.startswith(k)]
        assert keys, f"{doc}: no test runs the block starting {text.splitlines()[0]!r}"
    for target in RUN_BY.values():
        for module, name in re.findall(r"(test_\w+)\.py::(test_\w+)", target):
            found = importlib.import_module(f"image_assets_tests.{module}")
            assert callable(getattr(found, name, None)), f"{module}.py has no {name}"
    ci = (REPO / ".ci" / "run").read_text()
    assert all(f"make {t}" in ci for t in ("lint", "typecheck", "test"))


def _workdir(tmp_path: Path) -> Path:
    """A folder where ``.venv/bin/...`` is the project's environment."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    return work


def _sh(command: str, cwd: Path, timeout: float = 300, **env: str):
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ------------------------------------------------------------ the registry example


def _product_page(name: str, sku: str, price: str, image: str, kind: str) -> bytes:
    if kind == "jsonld":
        data = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": name,
            "sku": sku,
            "image": [image],
            "offers": {"@type": "Offer", "price": price},  # no currency: the vendor's
        }
        body = f'<script type="application/ld+json">{json.dumps(data)}</script>'
    else:
        body = (
            f'<h1 class="product-title">{name}</h1><span class="sku">{sku}</span>'
            f'<span class="price">${price}</span>'
            '<meta itemprop="priceCurrency" content="USD">'
            f'<div class="gallery"><img src="{image}" alt=""></div>'
        )
    return f"<!DOCTYPE html><html><head><title>{name}</title></head><body>{body}</body></html>".encode()


class ExampleSite(BaseHTTPRequestHandler):
    """Every page the README's three example vendors ask for, on one server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, ctype: str = "text/html; charset=utf-8", status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = urlsplit(self.path)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        path = parts.path
        if path == "/robots.txt":
            return self._send(b"User-agent: *\nDisallow: /private/\n", "text/plain")
        if path == "/collections/rockets/products.json":
            page = int(query.get("page", "1"))
            products = [
                {
                    "id": n,
                    "title": f"Apogee Rocket {n}",
                    "handle": f"apogee-{n}",
                    "variants": [{"sku": f"AP-{n}", "price": f"{10 + n}.00", "available": True}],
                    "images": [{"src": f"http://{self.headers['Host']}/img/ap{n}.jpg"}],
                }
                for n in ((1, 2) if page == 1 else (3,) if page == 2 else ())
            ]
            return self._send(json.dumps({"products": products}).encode(), "application/json")
        if path == "/catalog":
            page = int(query.get("page", "1"))
            links = "".join(
                f'<a class="product-link" href="/acme/{n}?utm_source=list">Rocket {n}</a>'
                for n in ((1, 2) if page == 1 else (3,))
            )
            more = '<a rel="next" href="/catalog?page=2">next</a>' if page == 1 else ""
            return self._send(f"<html><body>{links}{more}</body></html>".encode())
        if path.startswith("/acme/"):
            n = path.rsplit("/", 1)[1]
            return self._send(
                _product_page(
                    f"Acme Rocket {n}", f"AC-{n}", f"2{n}.50", f"/img/ac{n}.jpg", "jsonld"
                )
            )
        if path == "/shop/":
            tiles = "".join(
                f'<div class="product-tile"><a class="title" href="/shop/p{n}">P{n}</a></div>'
                for n in (1, 2)
            )
            return self._send(
                f'<html><body>{tiles}<a class="next" href="/shop/?p=2"></a>'.encode()
                if "p" not in query
                else b'<html><body><div class="product-tile">'
                b'<a class="title" href="/shop/p3">P3</a></div></body></html>'
            )
        if path == "/wp-json/wc/store/v1/products":
            return self._store_api(query)
        if path == "/rockets":
            cards = "".join(
                f'<a class="product-card" href="/rockets/nx-{n}">Nx {n}</a>' for n in (1, 2)
            )
            return self._send(f"<html><body>{cards}</body></html>".encode())
        if path.startswith("/rockets/nx-"):
            n = path.rsplit("-", 1)[1]
            product = {
                "id": f"gid-{n}",
                "title": f"Next Rocket {n}",
                "url": f"/rockets/nx-{n}",
                "variants": [{"sku": f"NX-{n}"}],
                "price": {"amount": f"1,29{n}.00", "currencyCode": "USD"},
                "images": [{"url": f"/img/nx{n}.jpg"}],
            }
            data = {"props": {"pageProps": {"product": product}}, "page": "/rockets/[id]"}
            script = (
                f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(data)}</script>'
            )
            return self._send(f"<html><body><div id=__next></div>{script}</body></html>".encode())
        if path.startswith("/shop/p"):
            n = path.removeprefix("/shop/p")
            return self._send(
                _product_page(f"Shop Rocket {n}", f"RS-{n}", f"3{n}.00", f"/img/rs{n}.jpg", "css")
            )
        return self._send(b"not found", "text/plain", 404)

    def _store_api(self, query: dict[str, str]):
        """WooCommerce's Store API as WordPress answers: 400 for per_page over 100 or a page
        past the last, X-WP-TotalPages on every page."""
        page, per_page = int(query.get("page", "1")), int(query.get("per_page", "10"))
        error = None
        if not 1 <= per_page <= 100:
            error = "rest_invalid_param"
        elif page != 1:
            error = "rest_post_invalid_page_number"
        if error:
            body = json.dumps({"code": error, "data": {"status": 400}}).encode()
            return self._send(body, "application/json", 400)
        products = [
            {
                "id": 40 + n,
                "name": f"Rakete Nr.&nbsp;{n}",
                "slug": f"rakete-{n}",
                "permalink": f"http://{self.headers['Host']}/produkt/rakete-{n}/",
                "sku": "",
                "prices": {"price": f"{n}29900", "currency_code": "EUR", "currency_minor_unit": 2},
                "images": [{"id": n, "src": f"http://{self.headers['Host']}/img/rk{n}.jpg"}],
            }
            for n in (1, 2)
        ]
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("X-WP-Total", "2")
        self.send_header("X-WP-TotalPages", "1")
        body = json.dumps(products).encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def localized_registry(base: str) -> str:
    """The README's registry example with its hosts on ``base`` and private addresses
    allowed for them; nothing else changed."""
    text = block("vendors:")
    for host in (
        "https://shop.example.com",
        "https://acme.example",
        "https://rocketshop.example",
        "https://raketen.example",
        "https://next.example",
    ):
        text = text.replace(host, base)
    registry = yaml.safe_load(text)
    for vendor in registry["vendors"]:
        vendor["allow_private_networks"] = ["127.0.0.0/8"]
    return yaml.safe_dump(registry, sort_keys=False)


def test_the_registry_example_scrapes_a_local_site(tmp_path):
    site = serve(ExampleSite)
    try:
        work = _workdir(tmp_path)
        (work / "my-vendors.yaml").write_text(localized_registry(site.url))
        command = block(".venv/bin/image-assets scrape").strip()
        found: dict[str, list[dict]] = {}
        for key in ("apogee", "acme", "rocketshop", "raketenladen", "nextrockets"):
            result = _sh(command.replace("--vendor apogee", f"--vendor {key}"), work, 120)
            assert result.returncode == 0, result.stderr
            found[key] = [json.loads(line) for line in result.stdout.splitlines()]
    finally:
        site.stop()
    apogee, acme, shop = found["apogee"], found["acme"], found["rocketshop"]
    woo, nxt = found["raketenladen"], found["nextrockets"]
    assert [(p["product_id"], p["name"], p["price"], p["currency"]) for p in woo] == [
        ("41", "Rakete Nr. 1", 1299.0, "EUR"),
        ("42", "Rakete Nr. 2", 2299.0, "EUR"),
    ]
    assert [(p["product_id"], p["name"], p["price"], p["currency"]) for p in nxt] == [
        ("nx-1", "Next Rocket 1", 1291.0, "USD"),
        ("nx-2", "Next Rocket 2", 1292.0, "USD"),
    ]
    assert all(p["image_urls"] and p["url"].endswith(p["product_id"]) for p in nxt)
    assert [p["name"] for p in apogee] == [f"Apogee Rocket {n}" for n in (1, 2, 3)]
    assert {p["currency"] for p in apogee} == {"USD"} and apogee[0]["price"] == 11.0
    assert sorted(p["name"] for p in acme) == [f"Acme Rocket {n}" for n in (1, 2, 3)]
    assert {p["currency"] for p in acme} == {"USD"}  # the vendor-level currency
    assert all("utm_source" not in p["url"] for p in acme)  # canonical product URLs
    assert sorted(p["product_id"] for p in shop) == ["rs-1", "rs-2", "rs-3"]
    assert {p["currency"] for p in shop} == {"USD"} and all(p["image_urls"] for p in shop)


def test_the_probe_command_prints_an_entry_that_reads_the_shop(tmp_path):
    site = serve(ExampleSite)
    try:
        work = _workdir(tmp_path)
        command = block(".venv/bin/image-assets probe").strip()
        command = command.replace("https://acme.example", site.url)
        # one local server plays every example shop, the WooCommerce one too: the API probe
        # would rightly find that shop's Store API on this origin, so it is skipped here
        flags = "--allow-private 127.0.0.0/8 --key acme --no-platforms"
        probed = _sh(f"{command} {flags}", work, 120)
        assert probed.returncode == 0, probed.stderr
        entry_text = probed.stdout[probed.stdout.index("# registry entry (structured)") :]
        entries = yaml.safe_load(entry_text)
        assert entries[0]["catalog"]["product_links"] == "a.product-link"
        assert entries[0]["catalog"]["next_page"] == "a[rel~=next]"
        assert "names no currency" in entry_text  # the example's pages name none
        entries[0]["currency"] = "USD"  # the review the note asks for
        (work / "probed.yaml").write_text(yaml.safe_dump({"vendors": entries}))
        scraped = _sh(
            ".venv/bin/image-assets scrape --vendor acme --registry probed.yaml", work, 120
        )
        assert scraped.returncode == 0, scraped.stderr
        names = sorted(json.loads(line)["name"] for line in scraped.stdout.splitlines())
        assert names == [f"Acme Rocket {n}" for n in (1, 2, 3)]
    finally:
        site.stop()


# ------------------------------------------------------------ other commands


def test_the_render_command_as_written(tmp_path):
    work = _workdir(tmp_path)
    (work / "photos").mkdir()
    for n in range(2):
        (work / "photos" / f"kit{n}.jpg").write_bytes(render_image(ImageSpec(f"d{n}", 640, 480)))
    (work / "my-renditions.yaml").write_text(
        "renditions:\n  - {name: small, width: 100, formats: [{format: webp}]}\n"
    )
    out = tmp_path / "renditions"  # the README writes to /tmp/renditions
    command = block(".venv/bin/image-assets render").strip().replace("/tmp/renditions", str(out))
    plain = command.replace(" [--config my-renditions.yaml]", "")
    optional = command.replace("[--config my-renditions.yaml]", "--config my-renditions.yaml")
    for variant, expect in ((plain, "thumb_300"), (optional, "small")):
        shutil.rmtree(out, ignore_errors=True)
        result = _sh(variant, work, 120)
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(lines) == 2 and all(line["ok"] for line in lines)
        assert any(expect in path.name for path in out.rglob("*")), sorted(out.rglob("*"))


def test_the_developer_commands(tmp_path):
    """``make format`` and ``make lock`` in a copy of the project (they write files);
    the graph test as written. ``make lint`` and ``make typecheck`` run in .ci/run."""
    commands = block("make lint")
    assert "make format" in commands and "make lock" in commands
    copy = tmp_path / "copy"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)  # mtimes kept: make sees it installed
    (copy / ".venv").symlink_to(REPO / ".venv")
    formatted = _sh("make format", copy, 300)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    changed = [
        n
        for n in files
        if (REPO / n).is_file() and (copy / n).read_bytes() != (REPO / n).read_bytes()
    ]
    assert changed == [], f"make format changed {changed}: the tree was not formatted"
    locked = _sh("make lock", copy, 300)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    for lock in ("prod.txt", "dev.txt"):
        text = (copy / "requirements" / lock).read_text()
        assert "dagster==" in text and "--hash=sha256:" in text
    (line,) = [c for c in commands.splitlines() if c.startswith(".venv/bin/pytest")]
    result = _sh(line, REPO, 300)
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_benchmark_command_runs(tmp_path):
    """The transcript's command, with small counts: the same output lines come back."""
    transcript = block("$ .venv/bin/python benchmarks/upload_burst.py")
    command = transcript.splitlines()[0].removeprefix("$ ")
    small = command.replace("--count 200", "--count 3").replace("--peer-count 30", "--peer-count 1")
    result = _sh(small, REPO, 600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for expected in transcript.splitlines()[2:]:
        label = expected.strip().split(":")[0]
        assert label in result.stdout, f"{label!r} missing from:\n{result.stdout}"


def test_the_tags_benchmark_runs():
    """The tags benchmark at small counts: both of its lines come back."""
    result = _sh(".venv/bin/python benchmarks/tags.py --images 1 --hashes 3000", REPO, 300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "% of the renditions" in result.stdout and "multi-index" in result.stdout
    assert "3000 hashes, distance 4" in result.stdout


def test_the_scale_benchmark_runs():
    """The scale benchmark at a small catalogue: a row per stage, cold and re-run, and the
    summary line with the ratio and the re-run's share (the re-run answered by 304s)."""
    result = _sh(
        ".venv/bin/python benchmarks/scale.py --products 12,24 --uploads-known ''", REPO, 600
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for stage in ("crawl", "download", "render", "publish", "csv", "tags", "catalog tables"):
        assert re.search(rf"^\| {stage} (\| [\d.]+ \(\d+\) ){{4}}\|$", result.stdout, re.M), stage
    for n in (12, 24):
        line = re.search(
            rf"^  {n} products: cold [\d.]+ s \(([\d.]+)x .* = ([\d.]+)% of cold "
            rf"\((\d+) answers 304\), peak RSS \d+ MB$",
            result.stdout,
            re.M,
        )
        assert line, result.stdout
        assert int(line[3]) >= n  # every image revalidated, none fetched again
    assert "  12 products: cold" in result.stdout and "(1.00x" in result.stdout
    assert "Uploads:" not in result.stdout  # '' skips that half


def test_the_scale_benchmark_drains_a_burst_with_earlier_uploads_known():
    """The uploads half at a small size, under dagster dev: a row per case with every
    column filled, the earlier uploads there as partitions, and the ratio lines."""
    command = ".venv/bin/python benchmarks/scale.py --products '' --uploads-known 0,300 --burst 4"
    result = _sh(command, REPO, 900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = re.findall(
        r"^\| ([\d,]+) \| ([\d,]+) \| ([\d.]+) s \| .*\| ([\d.]+) s \|$", result.stdout, re.M
    )
    assert [(known, partitions) for known, partitions, *_ in rows] == [("0", "0"), ("300", "300")]
    assert all(float(drain) > 0 and float(page) > 0 for _, _, drain, page in rows)
    for case in rows:
        assert re.search(rf"^\| {case[0]} \| .*\(\d+\) \| .*\(\d+\) \|", result.stdout, re.M)
    assert re.search(
        r"^  300 earlier uploads .* drain [\d.]+x the drain with 0, asset page [\d.]+x$",
        result.stdout,
        re.M,
    )
    assert "Vendor:" not in result.stdout


def test_the_extractors_benchmark_runs():
    """The page-reading benchmark at a small count: one line per page shape, with a ratio."""
    result = _sh(".venv/bin/python benchmarks/extractors.py --pages 2", REPO, 300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for shape in ("json-ld graph", "microdata", "rdfa", "next.js"):
        assert re.search(rf"^{re.escape(shape)} .* \d+\.\dx$", result.stdout, re.M), shape


def test_the_avif_benchmark_runs():
    """AVIF against WebP at equal PSNR, at a small count: a verdict line per size and
    WebP quality asked for."""
    command = ".venv/bin/python benchmarks/avif.py --images 1 --speeds 9 --webp-quality 60,90"
    result = _sh(command, REPO, 600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    tables = result.stdout.split("WebP q")[1:]
    assert [table.split()[0] for table in tables] == ["60", "90"], result.stdout
    for table in tables:
        for size in ("fill 300x300", "800 wide", "1600 wide"):
            assert re.search(
                rf"^{size} +avif speed 9 .*(yes|no) \(smaller on \d/1\)$", table, re.M
            ), table


def _server_processes() -> set[int]:
    """Every thumbor, ipx and ``image-assets serve`` process running now."""
    import psutil

    found = set()
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if any(mark in command for mark in ("bin/thumbor", "bin/ipx", "image_assets.cli serve")):
            found.add(process.pid)
    return found


def test_the_thumbor_benchmark_commands_run():
    """Each command of the image service's transcript, with small counts, against the
    real thumbor of ``make thumbor`` and the real ipx of ``make ipx``: every kind of
    line comes back for every side and client shape, with the effort the command asks
    for (the service reading it: test_delivery.py), and no peer outlives it."""
    transcript = block("$ .venv/bin/python benchmarks/delivery.py")
    commands = [line for line in transcript.splitlines() if line.startswith("$ ")]
    assert len(commands) == 3
    for command in commands:
        small = command.removeprefix("$ ").replace("--images 12", "--images 2")
        small = small.replace("--requests 120", "--requests 6") + " --seconds 60 --burst 6"
        before = _server_processes()
        result = _sh(small, REPO, 900)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert _server_processes() <= before, "a server outlived the benchmark"
        effort = re.search(r"--webp-effort (\d)", command)
        content = re.search(r"--content ([\w-]+)", command)
        assert (
            f"2 {content[1] if content else 'natural'} JPEGs 4000x3000; WebP q80,"
            f" our effort {effort[1] if effort else '4'}, the peers' 4;"
        ) in result.stdout, result.stdout
        for side in ("image-assets", "thumbor", "ipx"):
            for shape in ("keep-alive", "fresh"):
                for level in (1, 8):
                    assert re.search(rf"c={level} {shape} +{side} .* CPU busy +\d+%", result.stdout)
            assert re.search(rf"burst of 6 {side} +answered 6 ", result.stdout), result.stdout
        for label in ("vs thumbor  c=8 keep-alive", "vs ipx      c=1 fresh", "bytes 1600 limit"):
            assert label in result.stdout, f"{label!r} missing from:\n{result.stdout}"
        psnr = re.findall(r"(\d+\.\d+) dB", result.stdout)
        assert len(psnr) == 9 and all(25 < float(x) < 60 for x in psnr), psnr


def test_the_webp_effort_benchmark_runs(tmp_path):
    """Its docstring's command with one image, over generated images and a folder of
    photos (the demo's, written here): both summaries come back."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        spec = ImageSpec(f"effort{i}", 640, 480)
        (photos / f"photo{i}.jpg").write_bytes(render_image(spec))
    command = f".venv/bin/python benchmarks/webp_effort.py --images 1 --photos {photos}"
    result = _sh(command, REPO, 300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "natural: method 2 spends" in result.stdout and "(2 images)" in result.stdout
    assert "photos: method 2 spends" in result.stdout, result.stdout


# ------------------------------------------------------------ the aws example


def test_the_aws_example_starts_the_ui_on_moto(aws_env, tmp_path):
    """The `aws` profile example as written (buckets and the secret on moto), then
    ``make ui`` until the code location has loaded; every process is gone after."""
    s3 = boto3.client("s3")
    for bucket in ("raw", "images", "cdn", "uploads"):
        s3.create_bucket(Bucket=f"shop-blog-data-{bucket}")
    example = block("export IMAGE_ASSETS_PROFILE=aws")
    assert example.rstrip().endswith("make ui")
    ui_port, demo_port = free_port(), free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "IMAGE_ASSETS_DATA_DIR": str(tmp_path / "data"),
        "UI_PORT": str(ui_port),
        "DEMO_PORT": str(demo_port),
        "AWS_ENDPOINT_URL": aws_env,
    }
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", example],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        loaded = _wait_for_location(ui_port, process, timeout=180)
        assert loaded["__typename"] == "RepositoryLocation", loaded
        assert {r["name"] for r in loaded["repositories"]} == {"__repository__"}
        time.sleep(25)  # two ticks of the upload sensor with nothing new
    finally:
        stopped = _stop_group(process)
    assert stopped, "make ui left processes behind after SIGTERM"
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    assert f"the Dagster UI on http://127.0.0.1:{ui_port}" in output, output
    noise = [
        line
        for line in output.splitlines()
        # warnings, and the sensor's INFO lines every tick; not errors: under load the
        # daemon's first tick can beat the code server (its own retry, not a warning)
        if re.search(r"WARNING|Warning\b|superseded|found in|SensorDaemon - .*INFO", line)
        # the one warning this example is meant to give: no signing secret for strict URLs
        and "image service not started: IMAGE_ASSETS_DELIVERY_STRICT needs" not in line
        # Dagster's daemon on a new instance's first start (it has no cursor to resume)
        and "No cursor for event type" not in line
    ]
    assert not noise, output[-6000:]  # no avoidable warning, no sensor chatter


def test_make_ui_on_a_busy_port_ends_at_once_with_one_line(tmp_path):
    """A busy UI port: one error line naming the port and how to pick another, a
    non-zero exit, and nothing left running (checked before anything starts)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {
            **os.environ,
            "DAGSTER_HOME": str(tmp_path / "home"),
            "IMAGE_ASSETS_DATA_DIR": str(tmp_path / "data"),
            "UI_PORT": str(port),
            "DEMO_PORT": str(free_port()),
            "DELIVERY_PORT": str(free_port()),
        }
        process = subprocess.Popen(
            ["make", "-s", "ui"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        out, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert f"error: cannot serve the Dagster UI on 127.0.0.1:{port}: the port is in use" in err
    assert "UI_PORT=" in err and "Serving" not in out + err
    assert not _group_alive(process.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(process: subprocess.Popen, grace: float = 30) -> bool:
    """SIGTERM the process group (what Ctrl-C in a terminal reaches); True when every
    process of it ended within ``grace`` seconds, else SIGKILL and False."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True  # it had ended already, all of it
    deadline = time.monotonic() + grace
    process.wait(timeout=grace)
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
        return False
    return True


def _wait_for_location(port: int, process: subprocess.Popen, timeout: float) -> dict:
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError {"
        " __typename ... on RepositoryLocation { repositories { name } }"
        " ... on PythonError { message } } } } } }"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"make ui exited {process.returncode}:\n{output[-3000:]}")
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=json.dumps({"query": query}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                entries = json.load(answer)["data"]["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["locationOrLoadError"]:
                return entries[0]["locationOrLoadError"]
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError("the UI did not load the code location in time")
