"""Placeholders for progressive loading: a tiny blurred LQIP data URI and a blurhash."""

from __future__ import annotations

import base64
import io

import blurhash
from PIL import Image, ImageFilter

from image_assets.imaging.config import PlaceholderSpec
from image_assets.imaging.encoding import flatten


def lqip_data_uri(img: Image.Image, spec: PlaceholderSpec, background: str) -> str:
    """A ``data:image/webp;base64`` URI of a blurred thumbnail ``lqip_width`` on its longer side.

    WebP rather than JPEG: at this size JPEG's fixed headers would be most of
    the bytes; the WebP is a couple of hundred bytes.
    """
    small = _shrunk(flatten(img, background), spec.lqip_width)
    small = small.filter(ImageFilter.GaussianBlur(1))
    buf = io.BytesIO()
    small.save(buf, "WEBP", quality=spec.lqip_quality, method=6)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _shrunk(img: Image.Image, side: int) -> Image.Image:
    """A copy whose longer side is ``side`` (extreme aspect ratios stay encodable)."""
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BOX)


def blurhash_of(img: Image.Image, spec: PlaceholderSpec, background: str) -> str:
    """The blurhash of a copy at most 32 pixels on a side (blurhash needs no more)."""
    small = _shrunk(flatten(img, background), 32)
    x, y = spec.blurhash_components
    return blurhash.encode(small, x_components=x, y_components=y)
