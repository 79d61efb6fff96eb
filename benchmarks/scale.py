"""Scale: how each cost grows with the catalogue and with the uploads already known.

Vendors: a generated Shopify store on 127.0.0.1 with N products (a pool of 16
pre-encoded JPEGs, each product's copy made distinct in bytes by a JPEG comment, so the
site never encodes and no two products share originals or renditions, while the 16
pictures are each shown by N/16 products, as a placeholder would be). The real
vendor assets and the catalog tables are materialized in a real Dagster instance, in
a process of their own; per stage (crawl, parse, download, render, publish, CSV,
tags, catalog tables) the table gives the time per product and the peak RSS of the
run's process tree (the render pool included), cold and re-run with nothing changed.

Uploads: a burst of JPEGs (0.5 to 12 MP) dropped at once into ``incoming/`` of a fresh
instance under ``dagster dev`` (webserver and daemon on the same cores, as ``image-assets
ui`` starts them), with 0, 10,000 or 100,000 earlier uploads already known: registered
cheaply as their dynamic partitions, audit rows and tag rows, with the catalog tables
built over them (none is rendered; their materialization events are not written, so the
event log is smaller than a real one's). Per case: the drain (first drop to last upload
rendered), the first outcome after the drop, p50/p95 drop to rendered, the sensor's
tick times and the runs' launch times (creation to start) over GraphQL, when
``image_metadata`` caught up with the last upload, and the upload asset's page in the UI
(its partitions and their statuses over GraphQL) before the burst.

    .venv/bin/python benchmarks/scale.py                      # vendors 1000,5000,20000;
                                                              # uploads 0,10000,100000
    .venv/bin/python benchmarks/scale.py --products 100,400 --uploads-known ''  # a quick look

Ratios against the smallest N are printed; the figures are in the README, Benchmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from image_assets.demo.images import ImageSpec, render_image  # noqa: E402

VENDOR = "bulk"
POOL = 16  # distinct pre-encoded photos
PHOTO = (640, 480)
STAGES = [  # (label, Dagster step keys)
    ("crawl", ["vendor_pages"]),
    ("parse", ["vendor_products"]),
    ("download", ["product_images"]),
    ("render", ["image_renditions"]),
    ("publish", ["cdn_uploads"]),
    ("csv", ["kits_csv"]),
    ("tags", ["image_tags"]),
    ("checks", ["vendor_checks"]),  # every asset check step of the vendor run
    ("catalog tables", ["clean_kits", "image_metadata", "image_tags_table"]),
]


# ------------------------------------------------------------------ the store


def photo_pool(count: int = POOL) -> list[bytes]:
    return [render_image(ImageSpec(f"scale-{i}", *PHOTO)) for i in range(count)]


def distinct(jpeg: bytes, index: int) -> bytes:
    """The pool photo with a COM segment naming the product: other bytes, same pixels."""
    text = f"product {index}".encode()
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    return jpeg[:2] + segment + jpeg[2:]


class Store(ThreadingHTTPServer):
    """``/shop/products.json?limit=&page=`` as Shopify answers it, and the photos."""

    daemon_threads = True

    def __init__(self, products: int):
        super().__init__(("127.0.0.1", 0), _StoreHandler)
        self.products = products
        self.pool = photo_pool()
        self.not_modified = 0  # 304s answered

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/shop"

    def page(self, page: int, limit: int) -> bytes:
        start = (page - 1) * limit
        items = []
        for i in range(start, min(start + limit, self.products)):
            items.append(
                {
                    "id": 7_000_000 + i,
                    "title": f"Bulk Kit {i:05d}",
                    "handle": f"bulk-kit-{i:05d}",
                    "variants": [
                        {"sku": f"BK-{i:05d}", "price": f"{10 + i % 90}.99", "available": True}
                    ],
                    "images": [{"position": 1, "src": f"{self.base_url}/images/{i}.jpg"}],
                }
            )
        return json.dumps({"products": items}).encode()


class _StoreHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Store

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/robots.txt":
            self._send(200, "text/plain", b"User-agent: *\nAllow: /\n")
        elif url.path == "/shop/products.json":
            query = parse_qs(url.query)
            page = int(query.get("page", ["1"])[0])
            limit = min(250, int(query.get("limit", ["30"])[0]))
            self._send(200, "application/json", self.server.page(page, limit))
        elif url.path.startswith("/shop/images/") and url.path.endswith(".jpg"):
            index = int(url.path.rsplit("/", 1)[1][:-4])
            if not 0 <= index < self.server.products:
                self._send(404, "text/plain", b"no such image")
                return
            self._send(200, "image/jpeg", distinct(self.server.pool[index % POOL], index))
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        """As a storefront's CDN answers: a strong ETag on every 200, and 304 with no
        body when If-None-Match names it (RFC 9110 13.1.2: weak comparison, or ``*``)."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        wanted = {
            t.strip().removeprefix("W/") for t in self.headers.get("If-None-Match", "").split(",")
        }
        if status == 200 and (etag in wanted or "*" in wanted):
            self.server.not_modified += 1
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 200:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def registry_yaml(base_url: str) -> str:
    return f"""vendors:
  - key: {VENDOR}
    name: Bulk Rocketry Distributors
    allow_private_networks: [127.0.0.0/8]
    catalog:
      kind: shopify
      base_url: "{base_url}"
      page_size: 250
      currency: USD
"""


# ------------------------------------------------------------------ one run, sampled

_RUN = """
import json, sys
from dagster import DagsterInstance, materialize
from image_assets.defs.catalog.assets import assets as catalog_assets
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks

partition, data_dir = sys.argv[1], sys.argv[2]
resources = build_resources(data_dir)
with DagsterInstance.get() as instance:
    vendor = materialize(
        [*vendor_assets, *checks], partition_key=partition, resources=resources,
        instance=instance, raise_on_error=False,
    )
    catalog = materialize(
        [*catalog_assets, *vendor_assets], selection=[a.key for a in catalog_assets],
        resources=resources, instance=instance, raise_on_error=False,
    )
    steps = {}
    for run in (vendor, catalog):
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            kind = event.event_type_value
            if kind == "STEP_START":
                steps.setdefault(event.step_key, {})["start"] = record.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                steps.setdefault(event.step_key, {})["end"] = record.timestamp
                steps[event.step_key]["ok"] = kind == "STEP_SUCCESS"
print(json.dumps({"success": vendor.success and catalog.success, "steps": steps}))
"""


@dataclass
class RssSampler:
    """Peak RSS of a process and its children, sampled every ``interval`` seconds, with
    the time of each sample (so a stage's peak is the peak within its steps' span)."""

    pid: int
    interval: float = 0.05
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):  # ended meanwhile
                        total += proc.memory_info().rss
            except psutil.Error:
                return
            self.samples.append((time.time(), total))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def materialize_vendor(env: dict[str, str], data_dir: Path, timeout: float) -> dict:
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, VENDOR, str(data_dir)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(proc.pid)
    started = time.time()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"the vendor run took more than {timeout:.0f} s") from None
    finally:
        sampler.stop()
    wall = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"the vendor run failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    if not result["success"]:
        raise SystemExit(f"a step failed: {result['steps']}\n{err[-3000:]}")
    stages = {}
    for label, keys in STAGES:
        if keys == ["vendor_checks"]:
            spans = [s for k, s in result["steps"].items() if k not in _ASSET_STEPS and "end" in s]
        else:
            spans = [result["steps"][k] for k in keys if k in result["steps"]]
        if not spans:
            continue
        seconds = sum(s["end"] - s["start"] for s in spans)
        peak = max(sampler.peak(s["start"], s["end"]) for s in spans)
        stages[label] = {"s": seconds, "rss": peak}
    return {
        "wall_s": wall,
        "stages": stages,
        "steps": {k: s["end"] - s["start"] for k, s in result["steps"].items() if "end" in s},
        "peak_rss": max((r for _, r in sampler.samples), default=0),
    }


_ASSET_STEPS = {k for _, keys in STAGES for k in keys}


def vendor_scale(products: int, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"scale-{products}-"))
    store = Store(products)
    thread = threading.Thread(target=store.serve_forever, daemon=True)
    thread.start()
    try:
        home, data = work / "home", work / "data"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        registry = work / "vendors.yaml"
        registry.write_text(registry_yaml(store.base_url))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "IMAGE_ASSETS_REGISTRY": str(registry),
            "IMAGE_ASSETS_PROFILE": "local",
            "IMAGE_ASSETS_DATA_DIR": str(data),
            "IMAGE_ASSETS_CATALOG_DB": str(data / "catalog.duckdb"),
        }
        cold = materialize_vendor(env, data, timeout)
        before = store.not_modified
        rerun = materialize_vendor(env, data, timeout)
        rerun["not_modified"] = store.not_modified - before
        return {"products": products, "cold": cold, "rerun": rerun}
    finally:
        store.shutdown()
        store.server_close()
        shutil.rmtree(work, ignore_errors=True)


def _mb(value: int) -> str:
    return f"{value / 2**20:,.0f}"


def print_vendor_table(results: list[dict]) -> None:
    base = results[0]
    labels = [label for label, _ in STAGES if label in base["cold"]["stages"]]
    print()
    print("Vendor run, per stage: ms per product (peak RSS MB of the run's process tree)")
    header = "| stage | " + " | ".join(f"{r['products']:,} cold | re-run" for r in results)
    print(header + " |")
    print("|---|" + "---|---|" * len(results))
    for label in labels:
        cells = []
        for r in results:
            for kind in ("cold", "rerun"):
                stage = r[kind]["stages"].get(label)
                cells.append(
                    f"{stage['s'] * 1000 / r['products']:.2f} ({_mb(stage['rss'])})"
                    if stage
                    else "-"
                )
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        for kind in ("cold", "rerun"):
            run = r[kind]
            cells.append(f"{run['wall_s'] * 1000 / r['products']:.2f} ({_mb(run['peak_rss'])})")
    print("| whole run (wall) | " + " | ".join(cells) + " |")
    print()
    for r in results:
        per_item = r["cold"]["wall_s"] / r["products"]
        ratio = per_item / (base["cold"]["wall_s"] / base["products"])
        rerun_share = r["rerun"]["wall_s"] / r["cold"]["wall_s"]
        print(
            f"  {r['products']:,} products: cold {r['cold']['wall_s']:.1f} s "
            f"({ratio:.2f}x the per-product cost at {base['products']:,}), "
            f"re-run {r['rerun']['wall_s']:.1f} s = {rerun_share:.1%} of cold "
            f"({r['rerun']['not_modified']:,} answers 304), "
            f"peak RSS {_mb(r['cold']['peak_rss'])} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", default="1000,5000,20000", help="vendor sizes; '' skips")
    parser.add_argument(
        "--uploads-known", default="0,10000,100000", help="earlier uploads per case; '' skips"
    )
    parser.add_argument("--burst", type=int, default=200, help="uploads dropped at once")
    parser.add_argument("--timeout", type=float, default=3600, help="per run, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.products.split(",") if n.strip()]
    figures: dict[str, object] = {"cores": os.cpu_count()}
    if sizes:
        print(
            f"Vendor: a Shopify store on 127.0.0.1, {POOL} distinct {PHOTO[0]}x{PHOTO[1]} "
            "JPEG photos made distinct per product; the default renditions; local profile",
            flush=True,
        )
        results = []
        for n in sizes:
            started = time.time()
            results.append(vendor_scale(n, args.timeout))
            print(f"  {n:,} products measured in {time.time() - started:.0f} s", flush=True)
        print_vendor_table(results)
        figures["vendor"] = results
    known = [int(n) for n in args.uploads_known.split(",") if n.strip()]
    if known:
        from scale_uploads import print_upload_table, upload_scale

        print(
            f"\nUploads: {args.burst} JPEGs (0.5 to 12 MP) dropped at once into incoming; "
            "listing sensor; dagster dev (webserver + daemon); local instance",
            flush=True,
        )
        cases = []
        for n in known:
            started = time.time()
            cases.append(upload_scale(n, args.burst, args.timeout))
            print(f"  {n:,} earlier uploads measured in {time.time() - started:.0f} s", flush=True)
        print_upload_table(cases)
        figures["uploads"] = cases
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
