"""Every output of one original from one decode: master, renditions, placeholders.

A pure function from bytes to bytes plus facts, so it runs in a worker
process and is tested without Dagster.

Speed by design:
* one decode per original; a JPEG is shrunk on load by libvips straight to the
  largest output actually needed (computed on the oriented size: EXIF rotation
  swaps the axes), at Lanczos quality (``shrink``);
* outputs are made largest first, and a ``limit``/``fit`` output feeds the
  smaller ones while it is at least twice their size (a cascade);
* output sizes always come from the full image's size, so they do not depend
  on how the pixels were reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from image_assets.imaging.config import RenditionConfig, RenditionSpec
from image_assets.imaging.decode import (
    DecodeLimits,
    ImageInfo,
    decode,
    has_alpha,
    oriented_size,
    probe,
)
from image_assets.imaging.encoding import encode, fit_encoder
from image_assets.imaging.geometry import render, required_source_size
from image_assets.imaging.placeholders import blurhash_of, lqip_data_uri


@dataclass(frozen=True)
class EncodedRendition:
    name: str
    format: str
    width: int
    height: int
    data: bytes
    crop: str = "limit"


@dataclass(frozen=True)
class RenderResult:
    info: ImageInfo
    master: EncodedRendition | None
    renditions: list[EncodedRendition]
    lqip: str | None
    blurhash: str | None


def render_all(
    data: bytes,
    config: RenditionConfig,
    *,
    limits: DecodeLimits = DecodeLimits(),
    include_master: bool = True,
) -> RenderResult:
    """Decode ``data`` once and make the master, every rendition and the placeholders.

    Raises :class:`~image_assets.imaging.decode.ImageRefused` for bad input.
    """
    info = probe(data, limits)
    width, height = oriented_size(info)
    specs = list(config.renditions)
    if include_master and config.master is not None:
        # the master's format depends on transparency, known only after decoding;
        # its size does not, so plan with a placeholder format
        specs.append(config.master.as_rendition(has_alpha=False))
    specs.sort(key=lambda s: required_source_size([s], width, height), reverse=True)
    img, _ = decode(data, limits, size=required_source_size(specs, width, height))
    alpha = has_alpha(img)

    source: Image.Image = img
    master: EncodedRendition | None = None
    renditions: list[EncodedRendition] = []
    smallest: Image.Image = img
    for index, spec in enumerate(specs):
        if spec.name == "master" and config.master is not None:
            spec = config.master.as_rendition(has_alpha=alpha)
        image = render(source, spec, config.background, reference_size=(width, height))
        for fmt in spec.formats:
            fitted = fit_encoder(image, fmt.format)
            encoded = EncodedRendition(
                name=spec.name,
                format=fmt.format,
                width=fitted.width,
                height=fitted.height,
                data=encode(fitted, fmt.format, fmt.quality, config.background),
                crop=spec.crop,
            )
            if spec.name == "master":
                master = encoded
            else:
                renditions.append(encoded)
        if image.width * image.height < smallest.width * smallest.height:
            smallest = image
        source = _next_source(source, image, spec, specs[index + 1 :], img)

    lqip = blurhash = None
    if config.placeholders is not None:
        lqip = lqip_data_uri(smallest, config.placeholders, config.background)
        blurhash = blurhash_of(smallest, config.placeholders, config.background)
    renditions.sort(key=lambda r: [s.name for s in config.renditions].index(r.name))
    return RenderResult(info, master, renditions, lqip, blurhash)


def _next_source(
    current: Image.Image,
    made: Image.Image,
    spec: RenditionSpec,
    rest: list[RenditionSpec],
    full: Image.Image,
) -> Image.Image:
    """Feed the next outputs from ``made`` when it keeps the aspect ratio and is big enough."""
    if not rest or spec.crop not in ("limit", "fit"):
        return current
    need = required_source_size(rest, full.width, full.height)
    if made.width >= need[0] * 2 and made.height >= need[1] * 2:
        return made  # at least 2x larger than what follows: no visible loss
    return current
