"""Renditions of 12-megapixel JPEGs: the project vs pyvips vs naive Pillow, one core.

The set, as WebP q80: 1600, 800 and 400 wide (``limit``) and a 300x300 ``fill``.
  * image_assets: ``render_all`` (one decode with DCT scaling, a cascade);
  * pyvips: ``thumbnail_buffer`` per rendition (shrink-on-load), VIPS_CONCURRENCY=1;
  * naive Pillow: decode the full image, resize it once per rendition.
Prints images/s, ratios and total output bytes; then the peak RSS of the whole
process tree while ``--pool`` distinct images go through the renditions asset's
worker pool (``steps.renditions.render_images``).

Usage: python benchmarks/renditions.py [--images 12] [--pool 500] [--skip-pool]
Needs the bench extra: pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import threading
import time

os.environ.setdefault("VIPS_CONCURRENCY", "1")  # before pyvips loads libvips

import contextlib

import psutil
import pyvips
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from image_assets.imaging.config import RenditionConfig
from image_assets.imaging.pipeline import render_all
from image_assets.records import ImageRecord
from image_assets.steps.renditions import render_images
from image_assets.storage import LocalBlobStore

WIDTHS = (1600, 800, 400)
FILL = (300, 300)
QUALITY = 80
CONFIG = RenditionConfig.model_validate(
    {
        "master": None,
        "placeholders": None,
        "renditions": [
            *(
                {
                    "name": f"w{w}",
                    "width": w,
                    "crop": "limit",
                    "formats": [{"format": "webp", "quality": QUALITY}],
                }
                for w in WIDTHS
            ),
            {
                "name": "thumb",
                "width": FILL[0],
                "height": FILL[1],
                "crop": "fill",
                "formats": [{"format": "webp", "quality": QUALITY}],
            },
        ],
    }
)


def photo_like(seed: int, size=(4000, 3000)) -> bytes:
    """A 12 MP JPEG with photo-like content: gradients, shapes, soft edges and sensor noise."""
    w, h = size
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    tint = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    img = Image.blend(base, tint, 0.5)
    draw = ImageDraw.Draw(img)
    for i in range(40):
        x, y = (seed * 131 + i * 977) % w, (seed * 71 + i * 1451) % h
        r = 80 + (i * 37) % 400
        draw.ellipse(
            [x - r, y - r, x + r, y + r],
            fill=((i * 41) % 256, (i * 83 + seed) % 256, (i * 17) % 256),
        )
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = Image.effect_noise(size, 24).convert("RGB")
    img = Image.blend(img, noise, 0.12)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def ours(data: bytes) -> int:
    return sum(len(r.data) for r in render_all(data, CONFIG).renditions)


def vips(data: bytes) -> int:
    total = 0
    for width in WIDTHS:
        thumb = pyvips.Image.thumbnail_buffer(data, width, height=100_000, size="down")
        total += len(thumb.webpsave_buffer(Q=QUALITY, effort=4))
    thumb = pyvips.Image.thumbnail_buffer(data, FILL[0], height=FILL[1], crop="centre")
    total += len(thumb.webpsave_buffer(Q=QUALITY, effort=4))
    return total


def naive(data: bytes) -> int:
    total = 0
    img = Image.open(io.BytesIO(data))
    img.load()
    for width in WIDTHS:
        out = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        out.save(buf, "WEBP", quality=QUALITY, method=4)
        total += buf.tell()
    buf = io.BytesIO()
    ImageOps.fit(img, FILL, Image.Resampling.LANCZOS).save(buf, "WEBP", quality=QUALITY, method=4)
    return total + buf.tell()


def timed(fn, images: list[bytes]) -> tuple[float, int]:
    fn(images[0])  # warm up (codec init, imports)
    started = time.perf_counter()
    total = sum(fn(data) for data in images)
    return time.perf_counter() - started, total


def tree_rss() -> int:
    proc = psutil.Process()
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def pool_peak_rss(count: int) -> tuple[float, float, int]:
    """Peak RSS of this process and its workers while ``count`` distinct originals are rendered."""
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as root:
        store = LocalBlobStore(root)
        records = []
        template = photo_like(0)
        for i in range(count):
            # distinct bytes per image (the pool dedupes by content) without re-encoding 12 MP each time
            data = template[:-2] + i.to_bytes(4, "big") + b"\xff\xd9"
            key = f"originals/{i:05d}"
            store.put(key, data)
            records.append(
                ImageRecord(
                    product_id=f"p{i}",
                    position=1,
                    source_url="bench",
                    status="ok",
                    original_key=key,
                    original_sha256=f"{i:064x}",
                    original_bytes=len(data),
                )
            )
        peak = tree_rss()
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        results, stats = render_images(records, store, CONFIG, say=lambda line: None)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        assert stats.failed == 0 and len(results) == count
        return peak / 2**20, elapsed, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12, help="distinct 12 MP JPEGs per peer")
    parser.add_argument("--pool", type=int, default=500, help="images through the worker pool")
    parser.add_argument("--skip-pool", action="store_true")
    args = parser.parse_args()

    images = [photo_like(seed) for seed in range(args.images)]
    print(
        f"{len(images)} JPEGs 4000x3000 (avg {sum(map(len, images)) / len(images) / 1e6:.1f} MB); "
        f"renditions {', '.join(map(str, WIDTHS))} limit + {FILL[0]}x{FILL[1]} fill, WebP q{QUALITY}; "
        f"one process, VIPS_CONCURRENCY={os.environ['VIPS_CONCURRENCY']}, libvips {pyvips.version(0)}.{pyvips.version(1)}"
    )
    results = {}
    for name, fn in (("image_assets", ours), ("pyvips thumbnail", vips), ("naive Pillow", naive)):
        seconds, total = timed(fn, images)
        results[name] = (seconds, total)
        print(f"  {name:17s} {len(images) / seconds:6.2f} images/s  {total / 1e6:7.2f} MB out")
    ours_s, ours_b = results["image_assets"]
    vips_s, vips_b = results["pyvips thumbnail"]
    naive_s, _ = results["naive Pillow"]
    print(
        f"  ratios: {vips_s / ours_s:.2f}x pyvips (target >= 1.25), {naive_s / ours_s:.2f}x naive "
        f"(target >= 2.5); bytes {100 * (ours_b / vips_b - 1):+.1f}% vs pyvips (target within 5%)"
    )
    if not args.skip_pool:
        peak, seconds, count = pool_peak_rss(args.pool)
        print(
            f"  pool: {count} images in {seconds:.1f}s ({count / seconds:.1f} images/s, "
            f"{os.cpu_count()} workers), peak RSS of the process tree {peak:.0f} MB (target < 1024)"
        )


if __name__ == "__main__":
    main()
