"""Apply a parsed transformation chain to a source image.

Pure: bytes in, bytes out. The output size is planned from the source's header
before any pixel is decoded, so an over-large request is refused cheaply, and a
JPEG source is decoded straight to the size the first step needs (libvips'
shrink-on-load and Lanczos reduce, ``imaging.shrink``). The decode limits of the renditions pipeline
apply to every source and overlay.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from PIL import Image, ImageFilter, ImageOps

from image_assets.delivery.grammar import DEFAULT_LIMITS, Component, GrammarError, Limits
from image_assets.formats import FORMATS, image_format
from image_assets.imaging.decode import DecodeLimits, decode, oriented_size, probe
from image_assets.imaging.encoding import DEFAULT_WEBP_EFFORT, encode
from image_assets.imaging.geometry import entropy_centering, resize
from image_assets.imaging.shrink import use_threads

QUALITY = {"auto": 80, "auto:best": 90, "auto:good": 80, "auto:eco": 70, "auto:low": 60}
# f_auto's preference, best compression first (JPEG when neither is accepted)
AUTO_ORDER = tuple((image_format(name).mime_type, name) for name in ("avif", "webp"))
# AVIF on the request path: libavif speed 7. Against WebP q80 effort 4 at equal PSNR
# (benchmarks/avif.py) it saves 29-40% of the bytes for 2.5-5x WebP's CPU; speed 6
# saves 32-47% for 3-12x, speed 8 under 11% (fill: 7% for 3.4x).
AVIF_SPEED = 7
# A URL's q_ is on the JPEG/WebP scale. For AVIF it becomes libavif's quality of
# equal PSNR (speed 7, medians over the fill, 800 and 1600 outputs): q80 is 47.
AVIF_EQUIVALENT = ((1, 1), (60, 34), (70, 37), (80, 47), (90, 71), (100, 100))
# f_auto serves AVIF only below this quality: at q90 a 1600 px AVIF of WebP's PSNR is
# 3x WebP's bytes (it still saves 24-34% at 800 and 300 px, for 5-7x the CPU).
AVIF_PAYS_BELOW = 90
DEFAULT_DECODE_LIMITS = DecodeLimits()
# every spelling a URL may use (f_jpg, .jpeg) -> the format the platform encodes
URL_FORMATS = {
    spelling: f.name
    for f in FORMATS.values()
    if f.writable
    for spelling in (f.name, f.extension, f.cloudinary_name)
}


class RenderRefused(ValueError):
    """The request cannot be served within the limits (answered 400)."""


@dataclass(frozen=True)
class Rendered:
    data: bytes
    format: str  # jpeg, png, webp, avif
    width: int
    height: int


def expand(
    components: tuple[Component, ...], named: Mapping[str, Component]
) -> tuple[Component, ...]:
    """Named transformations (``t_thumb``) replaced by what they stand for."""
    out = []
    for component in components:
        if component.named is not None:
            if component.named not in named:
                raise GrammarError(f"t_{component.named}: unknown named transformation")
            out.append(named[component.named])
        else:
            out.append(component)
    return tuple(out)


def output_format(
    components: tuple[Component, ...], extension: str | None, accept: str, source_format: str
) -> tuple[str, bool]:
    """(format, negotiated): the last ``f_`` wins, then the URL's extension, then the
    source's format; ``f_auto`` picks AVIF, WebP or JPEG by the request's Accept,
    AVIF only where it pays (below :data:`AVIF_PAYS_BELOW`)."""
    asked = next((c.fetch_format for c in reversed(components) if c.fetch_format), None)
    if asked == "auto":
        accepted = accepted_types(accept)
        for mime, fmt in AUTO_ORDER:
            if fmt == "avif" and output_quality(components) >= AVIF_PAYS_BELOW:
                continue  # AVIF would cost more than its bytes are worth
            if accepted.get(mime, 0.0) > 0:
                return fmt, True
        return "jpeg", True
    if asked is not None:
        return URL_FORMATS[asked], False
    if extension is not None:
        return URL_FORMATS[extension], False
    return URL_FORMATS.get(source_format, "jpeg"), False


def accepted_types(accept: str) -> dict[str, float]:
    """Media types an ``Accept`` header names, with their q-values (RFC 9110 12.5.1):
    ``image/avif;q=0`` says AVIF is not acceptable. Wildcards are not a reason to
    pick a format a client never named."""
    found: dict[str, float] = {}
    for item in accept[:2000].split(","):
        mime, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        mime = mime.strip().lower()
        if mime:
            found[mime] = q
    return found


def output_quality(components: tuple[Component, ...]) -> int:
    """The quality asked for, on the JPEG/WebP scale (``q_auto`` is 80)."""
    asked = next((c.quality for c in reversed(components) if c.quality), "auto")
    return QUALITY.get(asked) or int(asked)


def encoder_quality(fmt: str, quality: int) -> int:
    """``quality`` as ``fmt``'s encoder takes it: the same for JPEG and WebP, and for
    AVIF libavif's quality of equal PSNR (:data:`AVIF_EQUIVALENT`, interpolated)."""
    if fmt != "avif":
        return quality
    for (q0, a0), (q1, a1) in itertools.pairwise(AVIF_EQUIVALENT):
        if q0 <= quality <= q1:
            return round(a0 + (a1 - a0) * (quality - q0) / (q1 - q0))
    raise ValueError(f"quality {quality} is outside 1..100")


def _box(component: Component, width: int, height: int) -> tuple[int | None, int | None]:
    """The component's box in pixels (dpr and aspect ratio applied)."""
    dpr = component.dpr or 1.0
    w = round(component.width * dpr) if component.width else None
    h = round(component.height * dpr) if component.height else None
    if component.aspect_ratio:
        if w and not h:
            h = max(1, round(w / component.aspect_ratio))
        elif h and not w:
            w = max(1, round(h * component.aspect_ratio))
        elif not w and not h:  # crop the current image to the ratio
            if width / height > component.aspect_ratio:
                w, h = round(height * component.aspect_ratio), height
            else:
                w, h = width, round(width / component.aspect_ratio)
    return w, h


def planned_size(component: Component, width: int, height: int) -> tuple[int, int]:
    """Size after ``component`` for an input of ``width`` x ``height``."""
    if component.overlay is not None:
        return width, height
    w, h = _box(component, width, height)
    if not w and not h:
        return width, height
    crop = component.crop or "scale"
    if crop in ("fill", "pad") and w and h:
        return w, h
    if crop == "scale":
        if w and h:
            return w, h
        scale = (w / width) if w else (h / height)  # type: ignore[operator]
        return max(1, round(width * scale)), max(1, round(height * scale))
    scale = min(w / width if w else float("inf"), h / height if h else float("inf"))
    if crop == "limit":
        scale = min(scale, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan(
    components: tuple[Component, ...], width: int, height: int, limits: Limits
) -> list[tuple[int, int]]:
    """The size after each component; refuses any step over the pixel limits."""
    sizes = []
    for component in components:
        width, height = planned_size(component, width, height)
        if max(width, height) > limits.max_side:
            raise RenderRefused(f"output {width}x{height} is over the {limits.max_side}px limit")
        sizes.append((width, height))
    return sizes


def render(
    data: bytes,
    components: tuple[Component, ...],
    fmt: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    decode_limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
    overlay_source: Callable[[str], bytes] | None = None,
    webp_effort: int = DEFAULT_WEBP_EFFORT,
    threads: int = 1,
) -> Rendered:
    """Run the chain over ``data`` and encode as ``fmt`` (WebP at ``webp_effort``),
    libvips' decode and resizes on ``threads`` threads."""
    use_threads(threads)
    info = probe(data, decode_limits)
    width, height = oriented_size(info)
    sizes = plan(components, width, height, limits)
    img, _ = decode(data, decode_limits, size=_first_resize(components, sizes, width, height))
    reference = (width, height)
    background = "#ffffff"
    for component, size in zip(components, sizes, strict=True):
        if component.background:
            background = "#" + component.background[:6]
        img = _apply(img, component, size, reference, background, decode_limits, overlay_source)
        reference = img.size
    quality = encoder_quality(fmt, output_quality(components))
    out = encode(img, fmt, quality, background, webp_effort, AVIF_SPEED)
    return Rendered(out, fmt, img.width, img.height)


def _first_resize(
    components: tuple[Component, ...], sizes: list[tuple[int, int]], width: int, height: int
) -> tuple[int, int] | None:
    """The size the first component resizes the whole image to (None: it does not),
    so that a JPEG is decoded straight to it: the covering size for ``fill``, the
    inner size for ``pad``, else the output size."""
    if not components or components[0].overlay is not None or components[0].blur:
        return None
    first = components[0]
    crop = first.crop or "scale"
    if crop == "fill":
        out_w, out_h = sizes[0]
        scale = max(out_w / width, out_h / height)
        wanted = max(1, round(width * scale)), max(1, round(height * scale))
    elif crop == "pad":
        wanted = planned_size(replace(first, crop="fit"), width, height)
    else:
        wanted = sizes[0]
    return None if wanted == (width, height) else wanted


def _apply(
    img: Image.Image,
    component: Component,
    size: tuple[int, int],
    reference: tuple[int, int],
    background: str,
    decode_limits: DecodeLimits,
    overlay_source: Callable[[str], bytes] | None,
) -> Image.Image:
    if component.overlay is not None:
        return _overlay(img, component, decode_limits, overlay_source)
    crop = component.crop or "scale"
    if size != reference or crop == "fill":
        if crop == "fill":
            centering = entropy_centering(img) if component.gravity == "auto" else (0.5, 0.5)
            img = ImageOps.fit(img, size, Image.Resampling.LANCZOS, centering=centering)
        elif crop == "pad":
            inner = planned_size(replace(component, crop="fit"), *reference)
            resized = resize(img, inner)
            fill = (0, 0, 0, 0) if resized.mode == "RGBA" else background
            canvas = Image.new(resized.mode, size, fill)
            canvas.paste(resized, ((size[0] - resized.width) // 2, (size[1] - resized.height) // 2))
            img = canvas
        else:
            img = resize(img, size)
    if component.blur:
        img = img.filter(ImageFilter.GaussianBlur(radius=component.blur / 50))
    if component.grayscale:
        alpha = img.getchannel("A") if img.mode == "RGBA" else None
        img = ImageOps.grayscale(img).convert("RGB")
        if alpha is not None:
            img.putalpha(alpha)
    return img


def _overlay(
    base: Image.Image,
    component: Component,
    decode_limits: DecodeLimits,
    overlay_source: Callable[[str], bytes] | None,
) -> Image.Image:
    assert component.overlay is not None
    if overlay_source is None:
        raise RenderRefused("overlays are not available here")
    try:
        data = overlay_source(component.overlay.public_id)
    except KeyError:
        raise RenderRefused(f"overlay {component.overlay.public_id} not found") from None
    own = oriented_size(probe(data, decode_limits))
    target = _overlay_size(base.size, own, component)
    # decoded only to the size it is composited at (a JPEG shrinks on load)
    layer, _ = decode(data, decode_limits, size=target if target != own else None)
    if layer.size != target:
        layer = resize(layer, target)
    layer = layer.convert("RGBA")
    if component.overlay.opacity < 100:
        alpha = layer.getchannel("A").point(lambda a: a * component.overlay.opacity // 100)
        layer.putalpha(alpha)
    x, y = _position(base.size, layer.size, component.gravity or "center")
    x += component.x or 0
    y += component.y or 0
    out = base.convert("RGBA")
    out.alpha_composite(layer, (max(0, min(x, out.width - 1)), max(0, min(y, out.height - 1))))
    return out if base.mode == "RGBA" else out.convert("RGB")


def _overlay_size(
    base: tuple[int, int], own: tuple[int, int], component: Component
) -> tuple[int, int]:
    """The overlay's size on the base: its own, or scaled to fit the component's box
    (``fl_relative``: a share of the base), never under 1 px nor over the base."""
    if not (component.width or component.height):
        return own
    if component.overlay is not None and component.overlay.relative:
        w = max(1, round(base[0] * component.width)) if component.width else None
        h = max(1, round(base[1] * component.height)) if component.height else None
    else:
        w = max(1, int(component.width)) if component.width else None
        h = max(1, int(component.height)) if component.height else None
    scale = min(w / own[0] if w else float("inf"), h / own[1] if h else float("inf"))
    scale = min(scale, base[0] / own[0], base[1] / own[1], 16.0)
    return max(1, round(own[0] * scale)), max(1, round(own[1] * scale))


def _position(base: tuple[int, int], layer: tuple[int, int], gravity: str) -> tuple[int, int]:
    bw, bh = base
    lw, lh = layer
    x = {"west": 0, "east": bw - lw}.get(gravity.split("_")[-1], (bw - lw) // 2)
    y = {"north": 0, "south": bh - lh}.get(gravity.split("_")[0], (bh - lh) // 2)
    return x, y
