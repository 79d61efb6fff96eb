"""``image-assets``: run the demo, serve the sample sites, open the UI.

Subcommands:
  scrape      crawl one vendor of a registry and print its products as JSON lines
  probe       try every catalog kind on one product (or listing) page and print a
              registry entry to paste
  render      write renditions of local image files, one JSON line per input
  demo        serve the sample vendor sites and materialize the whole graph
              for every manufacturer in a real Dagster instance, then print a summary
  serve-demo  only serve the sample vendor sites on 127.0.0.1 (Ctrl-C to stop)
  ui          serve the sample sites and start `dagster dev` on the same DAGSTER_HOME
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DEMO_PORT = 8765


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` (default ``./.dagster_home``), with the project's dagster.yaml in it."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = Path("dagster.yaml")
    if source.is_file() and source.resolve() != target and not target.exists():
        shutil.copyfile(source, target)
    return home


def _start_demo_server(port: int, host: str = "127.0.0.1"):
    from image_assets.demo.server import DemoServer

    try:
        server = DemoServer(host, port).start()
    except OSError as exc:
        raise SystemExit(
            f"error: cannot serve the demo sites on {host}:{port} ({exc.strerror}). "
            "Is another demo running? Use --port to pick another port."
        ) from None
    os.environ["IMAGE_ASSETS_DEMO_URL"] = server.base_url
    return server


def _materializations(result) -> dict[str, dict]:
    """``asset name -> metadata values`` of a run's materializations."""
    out: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class _NoDelivery:
    base_url = "(not started)"

    def stop(self) -> None:
        pass


def _start_delivery(port: int):
    """The image service in this process; a setting it cannot start with (strict without
    a secret) is one warning line, not the end of the demo or the UI."""
    from image_assets.delivery.server import BackgroundDelivery

    try:
        return BackgroundDelivery("127.0.0.1", port).start()
    except ValueError as exc:
        print(f"warning: image service not started: {exc}", file=sys.stderr, flush=True)
        return _NoDelivery()


def cmd_demo(args: argparse.Namespace) -> int:
    home = ensure_dagster_home()
    os.environ.setdefault("IMAGE_ASSETS_DATA_DIR", str(Path(".data").resolve()))
    # where the upload sensor looks on the local profile: there before anyone drops a file
    incoming = Path(os.environ["IMAGE_ASSETS_DATA_DIR"]) / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    server = _start_demo_server(args.port)
    delivery = _start_delivery(args.delivery_port)
    from dagster import DagsterInstance

    from image_assets.definitions import defs
    from image_assets.scraping.registry import load_registry

    keys = [k for k in load_registry().keys if not args.vendor or k in args.vendor]
    run_config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    summary: list[list[str]] = [
        [
            "manufacturer",
            "status",
            "products",
            "images ok",
            "failed",
            "downloaded",
            "renditions",
            "uploads",
            "kits CSV",
        ]
    ]
    failed = []
    started = time.monotonic()
    print(
        f"Demo sites on {server.base_url}; images served on {delivery.base_url}; "
        f"Dagster instance in {home}",
        flush=True,
    )
    with DagsterInstance.get() as instance:
        job = defs.resolve_job_def("vendor_catalog_job")
        for number, key in enumerate(keys, start=1):
            print(f"\n[{number}/{len(keys)}] materializing {key} ...", flush=True)
            result = job.execute_in_process(
                partition_key=key, instance=instance, raise_on_error=False, run_config=run_config
            )
            meta = _materializations(result)
            images = meta.get("product_images", {})
            rend = meta.get("image_renditions", {})
            ups = meta.get("cdn_uploads", {})
            csv = meta.get("kits_csv", {})
            status = "ok" if result.success else "FAILED"
            if not result.success:
                failed.append(key)
            summary.append(
                [
                    key,
                    status,
                    str(meta.get("vendor_products", {}).get("products", "-")),
                    str(images.get("images_ok", "-")),
                    str(images.get("images_failed", "-")),
                    str(images.get("images_downloaded", "-")),
                    str(rend.get("rendition_files", "-")),
                    str(ups.get("images_uploaded", "-")),
                    str(csv.get("path", "-")),
                ]
            )
        print("\nrebuilding the clean catalog ...", flush=True)
        catalog = defs.resolve_job_def("catalog_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config
        )
    server.stop()
    delivery.stop()
    cmeta = _materializations(catalog).get("clean_kits", {})
    print("\n" + _table(summary))
    print(
        f"\nclean_kits: {cmeta.get('rows', '?')} rows in {cmeta.get('database', '?')} "
        f"({time.monotonic() - started:.1f}s in all)"
    )
    database = cmeta.get("database", ".data/catalog.duckdb")
    print(
        "\nNext: `make ui` opens the Dagster UI on this instance (http://127.0.0.1:3000) and\n"
        f"      serves the images the CSVs link to ({delivery.base_url}) and the gallery\n"
        f"      ({delivery.base_url}/gallery);\n"
        f"      drop images into {incoming}/ while it runs to see the upload sensor at work;\n"
        "      query the catalog (tables clean_kits, image_metadata):\n"
        f"      .venv/bin/python -c \"import duckdb; print(duckdb.connect('{database}', read_only=True)"
        ".sql('select manufacturer, product_id, name, imageSrc from clean_kits'))\""
    )
    if failed or not catalog.success:
        print(f"\nFAILED: {', '.join(failed) or 'clean_kits'}", file=sys.stderr)
        return 1
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    """Crawl one vendor into memory and print its products as JSON lines (nothing is written)."""
    import json

    from image_assets.scraping.crawl import (
        CatalogUnavailable,
        crawl_vendor,
        http_settings_for,
        parse_products,
    )
    from image_assets.scraping.http import HttpClient
    from image_assets.scraping.registry import RegistryError, load_registry
    from image_assets.storage import MemoryBlobStore

    def err(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        vendor = load_registry(args.registry).get(args.vendor)
    except RegistryError as exc:
        err(f"error: {exc}")
        return 2
    if args.limit:
        vendor = vendor.model_copy(update={"max_products": args.limit})
    store = MemoryBlobStore()
    started = time.monotonic()
    with HttpClient(http_settings_for(vendor)) as client:
        try:
            crawl = crawl_vendor(vendor, client, store, progress=err if args.verbose else None)
        except CatalogUnavailable as exc:
            err(f"error: {exc}")
            return 1
    products, problems = parse_products(vendor, crawl.pages, store)
    for product in products:
        record: dict[str, object] = {
            "product_id": product.product_id,
            "name": product.name,
            "manufacturer": product.manufacturer,
            "url": product.url,
            "image_urls": product.image_urls,
        }
        if product.price is not None:
            record["price"] = product.price
        if product.currency:
            record["currency"] = product.currency
        print(json.dumps(record, ensure_ascii=False), flush=True)
    stats = crawl.stats
    err(
        f"{vendor.key}: {len(products)} products, "
        f"{sum(len(p.image_urls) for p in products)} image URLs, "
        f"{sum(1 for p in products if not p.name)} without name, "
        f"{sum(1 for p in products if not p.image_urls)} without images; "
        f"{len(crawl.pages)} pages ({stats.fetched} fetched, {stats.failed} failed, "
        f"{stats.refused} refused, {stats.robots} disallowed by robots.txt) "
        f"in {time.monotonic() - started:.1f}s"
    )
    for problem in problems[:20]:
        err(f"  problem: {problem}")
    if len(problems) > 20:
        err(f"  ... and {len(problems) - 20} more problems")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Which kinds read a shop's page, what each found, and a registry entry for the best."""
    import ipaddress
    import re

    import yaml

    from image_assets.scraping.http import FetchError, HttpClient, HttpSettings
    from image_assets.scraping.probe import probe, review_notes

    try:
        for cidr in args.allow_private:
            ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        print(f"error: --allow-private: {exc}", file=sys.stderr)
        return 2
    if args.key is not None and not re.match(r"^[a-z0-9][a-z0-9_-]{0,39}$", args.key):
        print(f"error: --key {args.key!r} must be a lowercase slug ([a-z0-9_-])", file=sys.stderr)
        return 2
    settings = HttpSettings(allowed_private_networks=tuple(args.allow_private), max_retries=1)
    with HttpClient(settings) as client:
        try:
            report = probe(
                args.url,
                client,
                listing=args.listing,
                platforms=not args.no_platforms,
                key=args.key,
            )
        except FetchError as exc:
            print(f"error: {args.url}: {exc.reason}", file=sys.stderr)
            return 1
    print(f"probed {report.url}")
    if report.final_url != report.url:
        print(f"  answered from {report.final_url}")
    if report.product_url:
        print(f"  first product page: {report.product_url}")
    print(f"  {report.content_type or 'no content type'}, read as {report.encoding}")
    if report.listing is not None:
        links = report.listing["products"]
        print(
            f"  listing: {len(links)} product links with {report.listing['product_links']!r}"
            + (
                f", next page {report.listing['next_page']!r}"
                if report.listing["next_page"]
                else ""
            )
        )
    for finding in report.findings:
        count = sum(1 for p in finding.products if p.name)
        print(f"\nkind {finding.kind}: {count} product{'s' if count != 1 else ''}")
        for note in finding.notes[:4]:
            print(f"  ({note})")
        for product in finding.products[:3]:
            price = "no price" if product.price is None else f"{product.price:g}"
            print(
                f"  - {product.name!r}: {price} {product.currency or '(no currency)'}, "
                f"id {product.product_id}, {len(product.image_urls)} images"
            )
            for url in product.image_urls[:4]:
                print(f"      {url}")
        if finding.catalog and finding.kind == "embedded_json":
            for name, expression in finding.catalog["fields"].items():
                print(f"  fields.{name}: {expression}")
    if report.vendor is None:
        print("\nno kind found a product here: this is not a product page any kind can read")
        return 1
    entry = dict(report.vendor)
    if args.allow_private:
        entry["allow_private_networks"] = list(args.allow_private)
    notes = review_notes(report)
    print(f"\n# registry entry ({entry['catalog']['kind']}): review, then paste under `vendors:`")
    for note in notes:
        print(f"# - {note}")
    print(yaml.safe_dump([entry], sort_keys=False, allow_unicode=True), end="")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Renditions for local files, one JSON line per input; bad inputs are refused, not fatal."""
    import json

    from image_assets.formats import extension
    from image_assets.imaging.config import RenditionConfigError, load_rendition_config
    from image_assets.imaging.decode import ImageRefused
    from image_assets.imaging.pipeline import render_all
    from image_assets.layout import sanitize_id
    from image_assets.storage.local import atomic_write

    try:
        config = load_rendition_config(args.config)
    except RenditionConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    refused = 0
    used: set[str] = set()
    for number, name in enumerate(args.files, start=1):
        line: dict = {"input": name, "ok": False, "error": None, "renditions": []}
        try:
            data = Path(name).read_bytes()
            result = render_all(data, config, include_master=False)
            stem = sanitize_id(Path(name).stem) or "image"
            stem = stem if stem not in used else f"{stem}-{number}"  # same name, other folder
            used.add(stem)
            folder = out / stem
            for rendition in result.renditions:
                path = folder / f"{rendition.name}.{extension(rendition.format)}"
                atomic_write(path, rendition.data)
                line["renditions"].append(
                    {
                        "name": rendition.name,
                        "format": rendition.format,
                        "width": rendition.width,
                        "height": rendition.height,
                        "bytes": len(rendition.data),
                        "path": str(path),
                    }
                )
            line["ok"] = True
        except ImageRefused as exc:
            line["error"] = exc.reason
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            line["error"] = f"cannot read input: {exc.strerror}"
        except MemoryError:
            line["error"] = "refused: not enough memory to decode this image"
        if not line["ok"]:
            refused += 1
        print(json.dumps(line), flush=True)
    return 2 if refused else 0


def cmd_serve_demo(args: argparse.Namespace) -> int:
    server = _start_demo_server(args.port, args.host)
    print(f"Serving the demo vendor sites on {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


DEV_NOTICE = "ignore:Function `dev_command` is superseded"


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (checked before anything else starts, so a
    busy port ends the command at once with nothing left running)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def cmd_ui(args: argparse.Namespace) -> int:
    home = ensure_dagster_home()
    os.environ.setdefault("IMAGE_ASSETS_DATA_DIR", str(Path(".data").resolve()))
    if not port_is_free(args.host, args.ui_port):
        print(
            f"error: cannot serve the Dagster UI on {args.host}:{args.ui_port}: the port is in use;"
            " pick another with UI_PORT=... (make) or --ui-port",
            file=sys.stderr,
        )
        return 2
    server = _start_demo_server(args.port)
    delivery = _start_delivery(args.delivery_port)
    print(
        f"Demo sites on {server.base_url}; images and the gallery on {delivery.base_url}"
        f" ({delivery.base_url}/gallery);\nthe Dagster UI on http://{args.host}:{args.ui_port}"
        f" (starting; Dagster's own logs at level {args.log_level}, --log-level to change)",
        flush=True,
    )
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "dev", "-h", args.host, "-p", str(args.ui_port)]
    # the daemon logs two INFO lines per sensor tick (every 10 s) when nothing is new
    command += ["--log-level", args.log_level]
    workspace = Path("workspace.yaml").resolve()
    command += ["-w", str(workspace)] if workspace.is_file() else ["-m", "image_assets.definitions"]
    try:
        # from $DAGSTER_HOME: Dagster warns when the folder it starts in holds a
        # dagster.yaml (the project's template) that is not the instance's
        return subprocess.call(
            command,
            cwd=home if workspace.is_file() else None,
            # `dg dev` (dagster-dg-cli) supersedes `dagster dev`, which still works and
            # needs nothing more: the notice would be the first thing a new user reads
            env={**os.environ, "PYTHONWARNINGS": DEV_NOTICE},
        )
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()
        delivery.stop()


def cmd_housekeeping(args: argparse.Namespace) -> int:
    """CDN housekeeping of one vendor: ``--dry-run`` lists what would be deleted and its
    bytes; otherwise ``cdn_housekeeping`` runs in the Dagster instance (DAGSTER_HOME),
    with its safety gate, and its metadata is printed."""
    from datetime import UTC, datetime, timedelta

    import dagster

    from image_assets.defs.housekeeping.assets import cdn_housekeeping, unsafe_reason
    from image_assets.defs.profiles import build_resources
    from image_assets.scraping.registry import RegistryError, load_registry
    from image_assets.steps.housekeeping import housekeep

    try:
        vendor = load_registry(None).get(args.vendor)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ensure_dagster_home()
    resources = build_resources()
    with dagster.DagsterInstance.get() as instance:
        reason = unsafe_reason(instance, vendor.key)
        if not args.dry_run:
            result = dagster.materialize(
                [cdn_housekeeping],
                partition_key=vendor.key,
                resources=resources,
                instance=instance,
                run_config={"ops": {"cdn_housekeeping": {"config": {"max_share": args.max_share}}}},
                raise_on_error=False,
            )
            for name, value in _materializations(result).get("cdn_housekeeping", {}).items():
                if name != "backends":
                    print(f"{name}: {value}")
            return 0 if result.success else 1
    if reason:
        print(f"note: a real run would delete nothing now: {reason}", file=sys.stderr)
    wanted = {name: resources[name] for name in ("cdn", "storage")}
    with dagster.build_resources(wanted) as built:
        backends, warnings = built.cdn.chain()
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        try:
            outcome = housekeep(
                vendor.key,
                backends,
                built.storage.images(),
                built.storage.raw(),
                datetime.now(UTC).date(),
                grace=timedelta(days=vendor.retention_days),
                max_share=args.max_share,
                dry_run=True,
                say=lambda line: print(line, file=sys.stderr),
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    total = 0
    for backend in outcome.backends:
        for public_id, size in backend.would_delete:
            print(f"{backend.storage}\t{public_id}\t{size}")
            total += size
    count = sum(len(b.would_delete) for b in outcome.backends)
    print(
        f"{vendor.key}: {count} assets ({total} bytes) would be deleted; "
        f"{outcome.retired_waiting} more are unreferenced and within the "
        f"{vendor.retention_days}-day grace",
        file=sys.stderr,
    )
    return 0


def cmd_uploads_delete(args: argparse.Namespace) -> int:
    """Erase one upload: its files in every store, its results in the service's disk
    cache (when ``IMAGE_ASSETS_DELIVERY_CACHE_DIR`` is set here too); the audit row
    stays, ``deleted``. A second erasure is a no-op that says so."""
    import os

    import dagster

    from image_assets.defs.profiles import build_resources
    from image_assets.delivery.cache import DiskCache
    from image_assets.uploads.lifecycle import UploadError, erase

    resources = build_resources()
    with dagster.build_resources(
        {"uploads": resources["uploads"], "storage": resources["storage"]}
    ) as built:
        try:
            done = erase(built.uploads.stores(built.storage), args.upload_id)
        except UploadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2 if exc.reason == "invalid" else 1
    if done.already:
        print(f"{done.row.key} was erased already (at {done.row.deleted_at:.0f}); nothing to do")
        return 0
    cache_dir = os.environ.get("IMAGE_ASSETS_DELIVERY_CACHE_DIR")
    forgotten = 0
    if cache_dir and done.public_id:
        forgotten = DiskCache(cache_dir).forget(done.public_id)
    for key in done.removed:
        print(f"removed {key}")
    print(
        f"{done.row.key} erased: {len(done.removed)} files, {forgotten} cached results; "
        "its audit row stays, marked deleted"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from image_assets.delivery.supervisor import serve

    return serve(args.host, args.port, args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="image-assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole graph on the sample sites")
    demo.add_argument("--port", type=int, default=DEFAULT_DEMO_PORT, help="demo sites port")
    demo.add_argument("--vendor", action="append", help="only this manufacturer (repeatable)")
    demo.add_argument(
        "--delivery-port", type=int, default=8090, help="port of the image service (CSV links)"
    )
    demo.set_defaults(func=cmd_demo)
    scrape = sub.add_parser(
        "scrape", help="try a registry entry: print one vendor's products as JSON lines"
    )
    scrape.add_argument("--vendor", required=True, help="vendor key in the registry")
    scrape.add_argument(
        "--registry", help="registry YAML (default: IMAGE_ASSETS_REGISTRY or bundled)"
    )
    scrape.add_argument("--limit", type=int, help="stop after this many products")
    scrape.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    scrape.set_defaults(func=cmd_scrape)
    probe = sub.add_parser(
        "probe", help="which catalog kinds read a shop's page; prints a registry entry"
    )
    probe.add_argument("url", metavar="URL", help="a product page (or a listing, with --listing)")
    probe.add_argument(
        "--listing", action="store_true", help="URL is a listing page: find its product links"
    )
    probe.add_argument(
        "--allow-private",
        action="append",
        default=[],
        metavar="CIDR",
        help="let the probe fetch from this private network (127.0.0.0/8 for a local test shop)",
    )
    probe.add_argument("--key", help="the vendor key of the entry (default: from the host name)")
    probe.add_argument(
        "--no-platforms",
        action="store_true",
        help="do not try Shopify's and WooCommerce's APIs next to the URL",
    )
    probe.set_defaults(func=cmd_probe)
    render = sub.add_parser(
        "render", help="write renditions of local image files; one JSON line per input"
    )
    render.add_argument("files", nargs="+", metavar="FILE")
    render.add_argument("--out", required=True, help="output folder (one sub-folder per input)")
    render.add_argument("--config", help="rendition config YAML (default: bundled renditions.yaml)")
    render.set_defaults(func=cmd_render)
    serve = sub.add_parser("serve-demo", help="serve the sample vendor sites")
    serve.add_argument("--port", type=int, default=DEFAULT_DEMO_PORT)
    serve.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    serve.set_defaults(func=cmd_serve_demo)
    delivery = sub.add_parser(
        "serve", help="the delivery service: Cloudinary-style image URLs from the platform's store"
    )
    delivery.add_argument(
        "--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)"
    )
    delivery.add_argument("--port", type=int, default=8090)
    delivery.add_argument("--workers", type=int, default=1, help="worker processes")
    delivery.set_defaults(func=cmd_serve)
    keep = sub.add_parser(
        "housekeeping", help="delete from the CDN what no kits CSV references any more"
    )
    keep.add_argument("--vendor", required=True, help="vendor key in the registry")
    keep.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted and its bytes"
    )
    keep.add_argument(
        "--max-share",
        type=float,
        default=0.1,
        help="most of the vendor's assets on a backend one run deletes (default 0.1)",
    )
    keep.set_defaults(func=cmd_housekeeping)
    uploads = sub.add_parser("uploads", help="manage uploads")
    uploads_sub = uploads.add_subparsers(dest="uploads_command", required=True)
    delete = uploads_sub.add_parser(
        "delete", help="erase one upload: original, renditions, public and cached copies"
    )
    delete.add_argument("upload_id", metavar="ID", help="the audit table's key (u + 24 hex)")
    delete.set_defaults(func=cmd_uploads_delete)
    ui = sub.add_parser("ui", help="sample sites + dagster dev")
    ui.add_argument("--port", type=int, default=DEFAULT_DEMO_PORT, help="demo sites port")
    ui.add_argument("--host", default="127.0.0.1", help="UI host")
    ui.add_argument("--ui-port", type=int, default=3000, help="UI port")
    ui.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="level of Dagster's own service logs (default warning: quiet while nothing happens)",
    )
    ui.add_argument(
        "--delivery-port", type=int, default=8090, help="port of the image service (CSV links)"
    )
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an internal error: exit 1 with the cause, traceback on request
        if os.environ.get("IMAGE_ASSETS_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (IMAGE_ASSETS_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
