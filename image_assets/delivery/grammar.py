"""The delivery URL grammar: Cloudinary's, for the parameters the platform serves.

``/image/upload/[s--SIG--/]<component>/<component>/.../[v123/]<public_id>.<ext>``

A component is comma-separated ``key_value`` parameters, applied in order (a
chain). Parsed strictly: an unknown key, a malformed value, a repeated key in
one component or a value out of range is a :class:`GrammarError` whose message is
one line naming the parameter, so the service answers 400 with it. Limits (the
largest width, dpr and chain length) are enforced here, before any pixel is
touched. :meth:`Component.text` writes a component back in the canonical form
the SDK would, so parsing is testable as a round trip.

Supported: ``w_`` ``h_`` (pixels; a 0-1 fraction with ``fl_relative`` on an
overlay), ``c_fill|fit|limit|pad|scale``, ``g_center|auto`` and the compass
positions for overlays, ``ar_16:9`` or ``ar_1.5``, ``dpr_`` (capped),
``f_auto|jpg|png|webp|avif``, ``q_auto[:best|good|eco|low]`` or ``q_1..100``,
``b_<colour name>`` or ``b_rgb:rrggbb``, ``e_blur[:1..2000]``,
``e_grayscale``, ``t_<named transformation>``, ``l_<public id>`` (folders with
``:``) with ``o_`` opacity, ``x_``/``y_`` offsets and ``fl_relative``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from image_assets.formats import ALIASES, FORMATS

Crop = Literal["fill", "fit", "limit", "pad", "scale"]
CROPS: tuple[Crop, ...] = ("fill", "fit", "limit", "pad", "scale")
GRAVITIES = (
    "center",
    "auto",
    "north",
    "south",
    "east",
    "west",
    "north_east",
    "north_west",
    "south_east",
    "south_west",
)
# every format the platform encodes, as Cloudinary spells it (formats.py: one line each)
FETCH_FORMATS = ("auto", *(f.cloudinary_name for f in FORMATS.values() if f.writable))
QUALITY_LEVELS = ("best", "good", "eco", "low")
COLOUR_NAMES = {
    "white": "ffffff",
    "black": "000000",
    "gray": "808080",
    "grey": "808080",
    "red": "ff0000",
    "green": "008000",
    "blue": "0000ff",
    "transparent": "00000000",
}
EXTENSIONS = tuple(
    sorted({name for f in FORMATS.values() if f.writable for name in (f.name, f.extension)})
)

_KEY_VALUE = re.compile(r"^([a-z]{1,3})_(.+)$")
_VERSION = re.compile(r"^v[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^s--([A-Za-z0-9_-]{8}|[A-Za-z0-9_-]{32})--$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_PUBLIC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_HEX = re.compile(r"^[0-9a-f]{6}([0-9a-f]{2})?$")


class GrammarError(ValueError):
    """A URL the service does not serve; the message is one line for the 400 answer."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, checked before decoding."""

    max_side: int = 4000
    max_dpr: float = 3.0
    max_components: int = 8
    max_path: int = 1024


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Overlay:
    public_id: str  # with / (the URL spells folders with :)
    opacity: int = 100
    relative: bool = False


@dataclass(frozen=True)
class Component:
    """One ``/``-separated component of a chain: every field None means "not asked"."""

    width: float | None = None
    height: float | None = None
    crop: Crop | None = None
    gravity: str | None = None
    aspect_ratio: float | None = None
    dpr: float | None = None
    fetch_format: str | None = None
    quality: str | None = None  # "auto", "auto:good", or "80"
    background: str | None = None  # rrggbb[aa]
    blur: int | None = None
    grayscale: bool = False
    named: str | None = None
    overlay: Overlay | None = None
    x: int | None = None
    y: int | None = None

    def text(self) -> str:
        """The component as a URL writes it (keys sorted as the SDK sorts them)."""
        parts: dict[str, str] = {}
        if self.aspect_ratio is not None:
            parts["ar"] = _number(self.aspect_ratio)
        if self.background is not None:
            parts["b"] = f"rgb:{self.background}"
        if self.crop is not None:
            parts["c"] = self.crop
        if self.dpr is not None:
            parts["dpr"] = _number(self.dpr)
        if self.blur is not None:
            parts["e"] = f"blur:{self.blur}"
        elif self.grayscale:
            parts["e"] = "grayscale"
        if self.fetch_format is not None:
            parts["f"] = self.fetch_format
        if self.overlay is not None and self.overlay.relative:
            parts["fl"] = "relative"
        if self.gravity is not None:
            parts["g"] = self.gravity
        if self.height is not None:
            parts["h"] = _number(self.height)
        if self.overlay is not None:
            parts["l"] = self.overlay.public_id.replace("/", ":")
            if self.overlay.opacity != 100:
                parts["o"] = str(self.overlay.opacity)
        if self.quality is not None:
            parts["q"] = self.quality
        if self.named is not None:
            parts["t"] = self.named
        if self.width is not None:
            parts["w"] = _number(self.width)
        if self.x is not None:
            parts["x"] = str(self.x)
        if self.y is not None:
            parts["y"] = str(self.y)
        return ",".join(f"{k}_{v}" for k, v in sorted(parts.items()))


@dataclass(frozen=True)
class DeliveryRequest:
    components: tuple[Component, ...]
    public_id: str
    extension: str | None  # as written; None when the URL has none
    version: int | None = None
    signature: str | None = None  # the s--...-- part, as written
    signed_text: str = ""  # what the signature covers: components + "/" + public id[.ext]

    @property
    def transformation(self) -> str:
        return "/".join(c.text() for c in self.components)

    @property
    def named_only(self) -> bool:
        """Only named transformations (``t_``): served unsigned even when strict."""
        return bool(self.components) and all(
            c.named is not None and replace(c, named=None) == Component() for c in self.components
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _int(key: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?[0-9]{1,6}", text):
        raise GrammarError(f"{key}_{text}: not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise GrammarError(f"{key}_{text}: out of range {low}..{high}")
    return value


def _float(key: str, text: str, low: float, high: float) -> float:
    if not re.fullmatch(r"[0-9]{1,5}(\.[0-9]{1,4})?", text):
        raise GrammarError(f"{key}_{text}: not a number")
    value = float(text)
    if not low <= value <= high:
        raise GrammarError(f"{key}_{text}: out of range {low:g}..{high:g}")
    return value


def _size(key: str, text: str, limits: Limits) -> float:
    if "." in text:
        return _float(key, text, 0.0001, 1.0)  # a fraction (overlays with fl_relative)
    return _int(key, text, 1, limits.max_side)


def _colour(text: str) -> str:
    if text.startswith("rgb:"):
        code = text[4:].lower()
        if _HEX.match(code):
            return code
    elif text in COLOUR_NAMES:
        return COLOUR_NAMES[text]
    raise GrammarError(f"b_{text}: not a colour (a name such as white, or rgb:rrggbb)")


def _choice(key: str, meaning: str, allowed: tuple[str, ...]) -> Callable[[str, Limits], str]:
    def parse(value: str, limits: Limits) -> str:
        if value not in allowed:
            raise GrammarError(f"{key}_{value}: unknown {meaning} ({', '.join(allowed)})")
        return value

    return parse


def _aspect_ratio(value: str, limits: Limits) -> float:
    if ":" in value:
        w, _, h = value.partition(":")
        return round(_float("ar", w, 0.01, 100) / _float("ar", h, 0.01, 100), 6)
    return _float("ar", value, 0.01, 100)


def _fetch_format(value: str, limits: Limits) -> str:
    value = "jpg" if ALIASES.get(value, value) == "jpeg" else value
    if value not in FETCH_FORMATS:
        raise GrammarError(f"f_{value}: unknown format ({', '.join(FETCH_FORMATS)})")
    return value


def _quality(value: str, limits: Limits) -> str:
    if value == "auto" or (
        value.startswith("auto:") and value.removeprefix("auto:") in QUALITY_LEVELS
    ):
        return value
    return str(_int("q", value, 1, 100))


def _transformation_name(value: str, limits: Limits) -> str:
    if not _NAME.match(value):
        raise GrammarError(f"t_{value}: not a transformation name")
    return value


def _overlay_id(value: str, limits: Limits) -> str:
    public_id = value.replace(":", "/")
    if not _PUBLIC_ID.match(public_id) or ".." in public_id:
        raise GrammarError(f"l_{value}: not a public id")
    return public_id


@dataclass(frozen=True)
class Effect:
    blur: int | None = None
    grayscale: bool = False


def _effect(value: str, limits: Limits) -> Effect:
    name, _, arg = value.partition(":")
    if name == "blur":
        return Effect(blur=_int("e_blur:", arg, 1, 2000) if arg else 100)
    if name == "grayscale" and not arg:
        return Effect(grayscale=True)
    raise GrammarError(f"e_{value}: unknown effect (blur, grayscale)")


def _flag(value: str, limits: Limits) -> bool:
    if value != "relative":
        raise GrammarError(f"fl_{value}: unknown flag (relative)")
    return True


def _offset(key: str) -> Callable[[str, Limits], int]:
    return lambda value, limits: _int(key, value, -limits.max_side, limits.max_side)


@dataclass(frozen=True)
class Parameter:
    """One URL parameter: the :class:`Component` field (or overlay part) it sets and
    the parser of its value (``GrammarError`` naming it when the value is wrong)."""

    field: str
    parse: Callable[[str, Limits], object]


PARAMETERS: dict[str, Parameter] = {
    "w": Parameter("width", lambda v, limits: _size("w", v, limits)),
    "h": Parameter("height", lambda v, limits: _size("h", v, limits)),
    "c": Parameter("crop", _choice("c", "crop", CROPS)),
    "g": Parameter("gravity", _choice("g", "gravity", GRAVITIES)),
    "ar": Parameter("aspect_ratio", _aspect_ratio),
    "dpr": Parameter("dpr", lambda v, limits: _float("dpr", v, 0.1, limits.max_dpr)),
    "f": Parameter("fetch_format", _fetch_format),
    "q": Parameter("quality", _quality),
    "b": Parameter("background", lambda v, limits: _colour(v)),
    "e": Parameter("effect", _effect),
    "t": Parameter("named", _transformation_name),
    "l": Parameter("overlay", _overlay_id),
    "o": Parameter("opacity", lambda v, limits: _int("o", v, 0, 100)),
    "fl": Parameter("relative", _flag),
    "x": Parameter("x", _offset("x")),
    "y": Parameter("y", _offset("y")),
}


def parse_component(text: str, limits: Limits = DEFAULT_LIMITS) -> Component:
    """One component: ``w_300,h_300,c_fill``, each parameter parsed by its entry in
    :data:`PARAMETERS`, then the rules between parameters checked."""
    if not text:
        raise GrammarError("empty transformation component")
    fields: dict[str, Any] = {}
    for part in text.split(","):
        match = _KEY_VALUE.match(part)
        if not match:
            raise GrammarError(f"{part!r}: not a key_value parameter")
        key, value = match.groups()
        parameter = PARAMETERS.get(key)
        if parameter is None:
            raise GrammarError(f"{key}_{value}: unknown parameter {key}_")
        if parameter.field in fields:
            raise GrammarError(f"{key}_ given twice in one component")
        fields[parameter.field] = parameter.parse(value, limits)
    effect = fields.pop("effect", Effect())
    overlay = fields.pop("overlay", None)
    opacity = fields.pop("opacity", None)
    relative = fields.pop("relative", False)
    if opacity is not None and overlay is None:
        raise GrammarError("o_ needs an overlay (l_)")
    if relative and overlay is None:
        raise GrammarError("fl_relative needs an overlay (l_)")
    for key in ("width", "height"):
        if isinstance(fields.get(key), float) and not (overlay and relative):
            raise GrammarError(f"{key[0]}_ as a fraction needs an overlay with fl_relative")
    if overlay is None and ("x" in fields or "y" in fields):
        raise GrammarError("x_ and y_ need an overlay (l_)")
    if overlay is None and fields.get("gravity") not in (None, "center", "auto"):
        raise GrammarError(f"g_{fields['gravity']}: compass gravity is for overlays (l_)")
    component = Component(
        **fields,
        blur=effect.blur,
        grayscale=effect.grayscale,
        overlay=(
            Overlay(overlay, 100 if opacity is None else opacity, relative)
            if overlay is not None
            else None
        ),
    )
    if component.named is not None and replace(component, named=None) != Component():
        raise GrammarError("t_ stands alone in its component")
    return component


def _looks_like_component(segment: str) -> bool:
    return all(_KEY_VALUE.match(part) for part in segment.split(","))


def parse_path(path: str, limits: Limits = DEFAULT_LIMITS) -> DeliveryRequest:
    """``/image/upload/...`` -> :class:`DeliveryRequest`; :class:`GrammarError` otherwise.

    The path is taken as received (still percent-encoded): an encoded ``/``, ``.``
    or anything outside the public-id alphabet is refused, never decoded into a
    path that could leave the store.
    """
    if len(path) > limits.max_path:
        raise GrammarError(f"path longer than {limits.max_path} characters")
    prefix = "/image/upload/"
    if not path.startswith(prefix):
        raise GrammarError("not an /image/upload/ URL")
    segments = path[len(prefix) :].split("/")
    if any(s == "" for s in segments):
        raise GrammarError("empty path segment")
    signature = None
    if _SIGNATURE.match(segments[0]):
        signature, segments = segments[0], segments[1:]
    components: list[Component] = []
    version: int | None = None
    index = 0
    has_version = any(_VERSION.match(s) for s in segments[:-1])
    while index < len(segments) - 1:
        segment = segments[index]
        if _VERSION.match(segment):
            version = int(segment[1:])
            index += 1
            break
        if not has_version and not _looks_like_component(segment):
            break
        components.append(parse_component(segment, limits))
        index += 1
        if len(components) > limits.max_components:
            raise GrammarError(f"more than {limits.max_components} chained components")
    rest = "/".join(segments[index:])
    if not rest:
        raise GrammarError("no public id")
    stem, dot, ext = rest.rpartition(".")
    if dot and ext in EXTENSIONS:
        public_id, extension = stem, ext
    else:
        public_id, extension = rest, None
    if not _PUBLIC_ID.match(public_id) or ".." in public_id:
        raise GrammarError(f"not a public id: {public_id[:80]!r}")
    transformation = "/".join(segments[: index - (1 if version is not None else 0)])
    signed = "/".join(p for p in (transformation, rest) if p)
    return DeliveryRequest(
        components=tuple(components),
        public_id=public_id,
        extension=extension,
        version=version,
        signature=signature,
        signed_text=signed,
    )
