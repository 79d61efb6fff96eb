"""Encoding: deliberate encoder settings per format, within each encoder's limits."""

from __future__ import annotations

import io

from PIL import Image

from image_assets.formats import image_format


def fit_encoder(img: Image.Image, fmt: str) -> Image.Image:
    """``img`` scaled down (aspect kept) if a side exceeds what ``fmt`` can encode."""
    limit = image_format(fmt).max_side
    if limit is None or max(img.size) <= limit:
        return img
    scale = limit / max(img.size)
    size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def flatten(img: Image.Image, background: str) -> Image.Image:
    if img.mode != "RGBA":
        return img
    canvas = Image.new("RGB", img.size, background)
    canvas.paste(img, mask=img.getchannel("A"))
    return canvas


DEFAULT_WEBP_EFFORT = 4
DEFAULT_AVIF_SPEED = 6


def encode(
    img: Image.Image,
    fmt: str,
    quality: int,
    background: str = "#ffffff",
    webp_effort: int = DEFAULT_WEBP_EFFORT,
    avif_speed: int = DEFAULT_AVIF_SPEED,
) -> bytes:
    """Encode with deliberate settings; formats without alpha (JPEG) get it flattened
    onto ``background``.

    JPEG: optimized Huffman tables, progressive, 4:2:0. WebP: method 4 by default
    (libwebp's rate-distortion optimisation starts at 3; at 2 a 1600 px photo
    encodes about 3.4x faster and about 15% larger). AVIF: speed 6 by default (the
    batch renditions, rendered once; the image service asks for 7, half the CPU for
    about 5% more bytes). PNG: compress level 6. No metadata.
    """
    if not image_format(fmt).alpha:
        img = flatten(img, background)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, optimize=True, progressive=True, subsampling=2)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=webp_effort)
    elif fmt == "avif":
        img.save(buf, "AVIF", quality=quality, speed=avif_speed)
    elif fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()
