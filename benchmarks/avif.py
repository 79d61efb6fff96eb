"""AVIF against WebP for f_auto: CPU and bytes at equal quality, per output size, one core.

For each size the image service renders (300x300 fill, 800 and 1600 wide) and each
AVIF encoder speed, the AVIF quality is searched (bisection) for the smallest file whose
PSNR is at least WebP q80's (libwebp effort 4, the service's default) on the same
pixels; then the CPU time of both encodes (one thread each, as the service encodes
one image per core) and the bytes, as medians over the images. The rule the service applies
(``delivery/render.py``): AVIF is not worth serving where it costs more than 2x WebP's CPU
for under 15% fewer bytes. ``--webp-quality`` gives the WebP qualities to match (the
service's ``q_auto`` levels are 60, 70, 80 and 90): the AVIF quality found for each is
the service's table of equivalent qualities.

    .venv/bin/python benchmarks/avif.py [--images 3] [--speeds 6,7,8,9] [--webp-quality 80]
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, ImageOps
from sample_images import photo_like

SIZES = {"fill 300x300": (300, 300), "800 wide": (800, None), "1600 wide": (1600, None)}


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(255**2 / mse))


def encode(img: Image.Image, fmt: str, **options) -> tuple[bytes, float]:
    """Encoded bytes and the CPU seconds the encode took (every thread of it)."""
    buf = io.BytesIO()
    started = time.process_time()
    img.save(buf, fmt, **options)
    return buf.getvalue(), time.process_time() - started


def sized(full: Image.Image, size: tuple[int, int | None]) -> Image.Image:
    width, height = size
    if height is not None:
        return ImageOps.fit(full, (width, height), Image.Resampling.LANCZOS)
    return full.resize((width, round(full.height * width / full.width)), Image.Resampling.LANCZOS)


def avif_at(img: Image.Image, speed: int, target_db: float) -> tuple[int, bytes, float]:
    """(quality, bytes, seconds) of the smallest AVIF at or above ``target_db``."""
    low, high = 20, 100
    best: tuple[int, bytes, float] | None = None
    while low <= high:
        quality = (low + high) // 2
        data, seconds = encode(img, "AVIF", quality=quality, speed=speed, max_threads=1)
        if psnr(Image.open(io.BytesIO(data)), img) >= target_db:
            best = (quality, data, seconds)
            high = quality - 1
        else:
            low = quality + 1
    if best is None:
        data, seconds = encode(img, "AVIF", quality=100, speed=speed, max_threads=1)
        best = (100, data, seconds)
    # time the chosen setting again, warm
    _, seconds = encode(img, "AVIF", quality=best[0], speed=speed, max_threads=1)
    return best[0], best[1], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--speeds", default="6,7,8,9")
    parser.add_argument("--webp-quality", default="80", help="comma-separated WebP qualities")
    args = parser.parse_args()
    speeds = [int(s) for s in args.speeds.split(",")]
    qualities = [int(q) for q in args.webp_quality.split(",")]
    fulls = []
    for seed in range(args.images):
        img = Image.open(io.BytesIO(photo_like(seed)))
        img.load()
        fulls.append(img.convert("RGB"))
    print(f"{args.images} photo-like 12 MP originals; WebP effort 4 vs AVIF at equal PSNR")
    for webp_quality in qualities:
        table(fulls, speeds, webp_quality)


def table(fulls: list[Image.Image], speeds: list[int], webp_quality: int) -> None:
    print(f"WebP q{webp_quality}")
    print(
        f"{'size':<14}{'encoder':<16}{'quality':>8}{'PSNR':>8}{'kB':>9}{'ms':>9}{'bytes':>9}{'CPU':>7}  worth it?"
    )
    for label, size in SIZES.items():
        rows: dict[str, list[tuple[float, float, float, float]]] = {}
        for full in fulls:
            img = sized(full, size)
            webp, webp_s = encode(img, "WEBP", quality=webp_quality, method=4)
            _, webp_s = encode(img, "WEBP", quality=webp_quality, method=4)  # warm
            target = psnr(Image.open(io.BytesIO(webp)), img)
            rows.setdefault("webp", []).append((webp_quality, target, len(webp), webp_s))
            for speed in speeds:
                quality, data, seconds = avif_at(img, speed, target)
                achieved = psnr(Image.open(io.BytesIO(data)), img)
                rows.setdefault(f"avif speed {speed}", []).append(
                    (quality, achieved, len(data), seconds)
                )
        # medians: one photo whose AVIF never reaches WebP's PSNR below q90 must not
        # stand for the set (it is counted in "wins")
        mean = {
            k: [float(np.median([v[i] for v in vs])) for i in range(4)] for k, vs in rows.items()
        }
        webp_sizes = [v[2] for v in rows["webp"]]
        _, _, webp_bytes, webp_s = mean["webp"]
        for name, (quality, db, size_bytes, seconds) in mean.items():
            saved = 1 - size_bytes / webp_bytes
            cpu = seconds / webp_s
            wins = sum(1 for v, w in zip(rows[name], webp_sizes, strict=True) if v[2] < w)
            verdict = (
                ""
                if name == "webp"
                else f"{'no' if cpu > 2 and saved < 0.15 else 'yes'} (smaller on {wins}/{len(fulls)})"
            )
            print(
                f"{label:<14}{name:<16}{quality:>8.0f}{db:>8.2f}{size_bytes / 1e3:>9.1f}"
                f"{seconds * 1e3:>9.1f}{-100 * saved:>+8.0f}%{cpu:>6.1f}x  {verdict}"
            )


if __name__ == "__main__":
    main()
