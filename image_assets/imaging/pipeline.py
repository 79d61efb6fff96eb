"""The image steps the assets call: normalize an original, make its renditions.

Both are pure functions from bytes to bytes plus facts, so they can run in a
worker pool and be tested without Dagster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from PIL import Image

from image_assets.imaging.decode import DecodeLimits, decode, has_alpha, oriented_size, probe
from image_assets.imaging.renditions import (
    RenditionConfig,
    encode,
    render,
    required_source_size,
)


@dataclass(frozen=True)
class Master:
    """The normalized original: oriented, sRGB, no metadata; what the CDN receives."""

    data: bytes
    format: str  # "jpeg" or "png"
    width: int
    height: int
    sha256: str
    original_format: str


@dataclass(frozen=True)
class EncodedRendition:
    name: str
    format: str
    width: int
    height: int
    data: bytes


def make_master(data: bytes, quality: int = 90, limits: DecodeLimits = DecodeLimits()) -> Master:
    """Decode (refusing bad input with :class:`ImageRefused`) and re-encode as the master.

    Opaque images become JPEG, images with transparency PNG, so no alpha is lost.
    """
    img, info = decode(data, limits)
    fmt = "png" if has_alpha(img) else "jpeg"
    encoded = encode(img, fmt, quality)
    return Master(
        data=encoded,
        format=fmt,
        width=img.width,
        height=img.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        original_format=info.format.lower(),
    )


def make_renditions(
    data: bytes, config: RenditionConfig, limits: DecodeLimits = DecodeLimits()
) -> list[EncodedRendition]:
    """Every rendition of ``config`` from one decode of ``data``.

    JPEG input is decoded with DCT scaling to the largest size any rendition
    needs; renditions are made largest first and each smaller one is resized
    from the previous output when that is still big enough (a cascade), which
    is much cheaper than resizing the full image each time.
    """
    info = probe(data, limits)
    width, height = oriented_size(info)
    specs = sorted(
        config.renditions,
        key=lambda s: required_source_size([s], width, height),
        reverse=True,
    )
    img, _ = decode(data, limits, draft_min_size=required_source_size(specs, width, height))
    source: Image.Image = img
    out: list[EncodedRendition] = []
    for index, spec in enumerate(specs):
        image = render(source, spec, config.background, reference_size=(width, height))
        for fmt in spec.formats:
            out.append(
                EncodedRendition(
                    name=spec.name,
                    format=fmt.format,
                    width=image.width,
                    height=image.height,
                    data=encode(image, fmt.format, fmt.quality, config.background),
                )
            )
        rest = specs[index + 1 :]
        if rest and spec.crop in ("limit", "fit"):
            # limit/fit keep the aspect ratio, so the output can feed the next ones
            need = required_source_size(rest, img.width, img.height)
            if image.width >= need[0] * 2 and image.height >= need[1] * 2:
                source = image  # at least 2x larger than what follows: good quality
    return out
