"""Renditions of 12-megapixel JPEGs: the project vs pyvips vs naive Pillow, one core.

The set, as WebP q80: 1600, 800 and 400 wide (``limit``) and a 300x300 ``fill``.
  * image_assets: ``render_all`` (one decode, shrunk on load by libvips, then a cascade);
  * pyvips: ``thumbnail_buffer`` per rendition (shrink-on-load), VIPS_CONCURRENCY=1;
  * naive Pillow: decode the full image, resize it once per rendition.
Prints images/s, ratios and total output bytes; for every output size, the PSNR after
encoding (against a Lanczos resize of the full decode) and the bytes of both sides; the
fidelity of the 1600 rendition
(PSNR against a Lanczos resize of the fully decoded original, before and after
encoding, with the bytes each side spent) on the photo-like set and on a set of
fine detail (lines, small text); then the peak RSS of the whole
process tree while ``--pool`` distinct images go through the renditions asset's
worker pool (``steps.renditions.render_images``).

Usage: python benchmarks/renditions.py [--images 12] [--pool 500] [--skip-pool]
pyvips and psutil come with `make install`.
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
from PIL import Image, ImageOps
from sample_images import fine_detail, photo_like

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


def psnr(a, b) -> float:
    import numpy as np

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(255**2 / mse))


def _vips_pixels(image) -> Image.Image:
    return Image.frombytes("RGB", (image.width, image.height), image.write_to_memory())


def fidelity(images: list[bytes]) -> dict[str, tuple[float, float, float]]:
    """Mean (PSNR before encoding, PSNR after encoding, bytes) of the 1600 rendition."""
    from image_assets.imaging.decode import decode
    from image_assets.imaging.geometry import render as render_one
    from image_assets.imaging.geometry import required_source_size, target_size

    spec = CONFIG.renditions[0]
    sums = {"image_assets": [0.0, 0.0, 0.0], "pyvips thumbnail": [0.0, 0.0, 0.0]}
    for data in images:
        full = Image.open(io.BytesIO(data))
        full.load()
        size = target_size(spec, full.width, full.height)
        reference = full.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        # ours: the same decode and resize render_all does, then the encoded output
        img, _ = decode(data, size=required_source_size(CONFIG.renditions, *full.size))
        before = render_one(img, spec, "#ffffff", reference_size=full.size)
        encoded = next(r.data for r in render_all(data, CONFIG).renditions if r.name == spec.name)
        after = Image.open(io.BytesIO(encoded)).convert("RGB")
        for i, v in enumerate((psnr(before, reference), psnr(after, reference), len(encoded))):
            sums["image_assets"][i] += v
        thumb = pyvips.Image.thumbnail_buffer(
            data, spec.width, height=100_000, size="down"
        ).copy_memory()  # pixels kept: they are read twice
        encoded = thumb.webpsave_buffer(Q=QUALITY, effort=4)
        after = Image.open(io.BytesIO(encoded)).convert("RGB")
        values = (psnr(_vips_pixels(thumb), reference), psnr(after, reference), len(encoded))
        for i, v in enumerate(values):
            sums["pyvips thumbnail"][i] += v
    n = len(images)
    return {k: (v[0] / n, v[1] / n, v[2] / n) for k, v in sums.items()}


def fidelity_by_size(images: list[bytes]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per output (1600, 800, 400 wide, 300x300 fill): mean PSNR after encoding against a
    Lanczos resize of the full decode, and mean bytes, for the project and for pyvips."""
    sums: dict[str, dict[str, list[float]]] = {}
    for data in images:
        full = Image.open(io.BytesIO(data))
        full.load()
        full = full.convert("RGB")
        made = {r.name: r.data for r in render_all(data, CONFIG).renditions}
        for spec in CONFIG.renditions:
            if spec.crop == "fill":
                reference = ImageOps.fit(full, FILL, Image.Resampling.LANCZOS)
                thumb = pyvips.Image.thumbnail_buffer(data, FILL[0], height=FILL[1], crop="centre")
            else:
                size = (spec.width, round(full.height * spec.width / full.width))
                reference = full.resize(size, Image.Resampling.LANCZOS)
                thumb = pyvips.Image.thumbnail_buffer(data, spec.width, height=100_000, size="down")
            theirs = thumb.webpsave_buffer(Q=QUALITY, effort=4)
            for side, encoded in (("image_assets", made[spec.name]), ("pyvips", theirs)):
                decoded = Image.open(io.BytesIO(encoded)).convert("RGB")
                if decoded.size != reference.size:  # a 1 px rounding difference
                    decoded = decoded.resize(reference.size, Image.Resampling.LANCZOS)
                entry = sums.setdefault(spec.name, {}).setdefault(side, [0.0, 0.0])
                entry[0] += psnr(decoded, reference)
                entry[1] += len(encoded)
    n = len(images)
    return {
        name: {side: (v[0] / n, v[1] / n) for side, v in sides.items()}
        for name, sides in sums.items()
    }


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
    detailed = [fine_detail(seed) for seed in range(max(1, args.images // 3))]
    for content, batch in (("photo-like", images), ("fine detail", detailed)):
        for name, (before, after, size) in fidelity(batch).items():
            print(
                f"  1600 rendition, {content:11s} {name:17s} PSNR {before:5.1f} dB before "
                f"encoding, {after:5.1f} dB after ({size / 1e3:.1f} kB)  [vs Lanczos from the full decode]"
            )
    for content, batch in (("photo-like", images), ("fine detail", detailed)):
        for name, sides in fidelity_by_size(batch).items():
            (ours_db, ours_bytes), (vips_db, vips_bytes) = sides["image_assets"], sides["pyvips"]
            print(
                f"  {name:6s} {content:11s} PSNR {ours_db:5.2f} dB vs pyvips {vips_db:5.2f} dB "
                f"({ours_db - vips_db:+.2f} dB, target >= -0.10), bytes "
                f"{100 * (ours_bytes / vips_bytes - 1):+.1f}% (target <= 0)"
            )
    if not args.skip_pool:
        peak, seconds, count = pool_peak_rss(args.pool)
        print(
            f"  pool: {count} images in {seconds:.1f}s ({count / seconds:.1f} images/s, "
            f"{os.cpu_count()} workers), peak RSS of the process tree {peak:.0f} MB (target < 1024)"
        )


if __name__ == "__main__":
    main()
