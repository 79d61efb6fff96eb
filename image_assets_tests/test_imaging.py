"""Decoding, normalization, renditions and placeholders on a generated corpus of tricky files."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw

from image_assets.demo.images import ImageSpec, draw_upright, render_image
from image_assets.imaging.config import RenditionConfig, load_rendition_config
from image_assets.imaging.decode import DecodeLimits, ImageRefused, check_complete, decode, probe
from image_assets.imaging.pipeline import render_all
from image_assets_tests import corpus

CONFIG = load_rendition_config()


def _mean_diff(a: Image.Image, b: Image.Image, size=(16, 10)) -> float:
    got, want = a.convert("RGB").resize(size).tobytes(), b.convert("RGB").resize(size).tobytes()
    return sum(abs(x - y) for x, y in zip(got, want, strict=True)) / len(got)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_by_pixels(orientation):
    spec = ImageSpec(seed=f"o{orientation}", width=320, height=200, orientation=orientation)
    img, info = decode(render_image(spec))
    assert info.orientation == orientation
    assert img.size == (320, 200)
    # a wrong rotation or flip moves the rocket; JPEG noise does not
    assert _mean_diff(img, draw_upright(spec)) < 12


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_rotated_originals_keep_renditions_upright_with_draft(orientation):
    spec = ImageSpec(seed="big", width=3000, height=2000, orientation=orientation)
    result = render_all(render_image(spec), CONFIG)
    w800 = next(r for r in result.renditions if r.name == "w800" and r.format == "webp")
    assert (w800.width, w800.height) == (800, 533)
    assert _mean_diff(_open(w800.data), draw_upright(spec)) < 12


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"", "empty"),
        (lambda: b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "SVG"),
        (lambda: b"<?xml version='1.0'?><svg><script>x</script></svg>", "SVG"),
        (lambda: corpus.png_claiming(60000, 60000), "decompression bomb"),
        (lambda: corpus.png_bomb(8000), "decompression bomb"),
        (lambda: b"GIF89a-garbage-garbage", "not a supported image|unreadable"),
        (lambda: b"\x00" * 1000, "not a supported image"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(make, reason):
    with pytest.raises(ImageRefused, match=reason):
        render_all(make(), CONFIG)


def test_decompression_bomb_is_refused_from_the_header():
    data = corpus.png_bomb(8000)
    assert len(data) < 200_000  # small on disk, 64 megapixels decoded
    with pytest.raises(ImageRefused, match="8000x8000"):
        probe(data)


def test_truncated_files_are_refused():
    whole = render_image(ImageSpec("t", 600, 400))
    cut = whole[: len(whole) // 3]
    with pytest.raises(ImageRefused, match="corrupt or truncated"):
        check_complete(cut, probe(cut))
    with pytest.raises(ImageRefused, match="corrupt or truncated"):
        render_all(cut, CONFIG)
    png = corpus.rgba_png()
    with pytest.raises(ImageRefused, match="corrupt or truncated"):
        check_complete(png[:-20], probe(png[:-20]))
    check_complete(whole, probe(whole))  # complete files pass


def test_byte_limit_checked_before_decoding():
    data = render_image(ImageSpec("b", 300, 200))
    with pytest.raises(ImageRefused, match="too large"):
        probe(data, DecodeLimits(max_bytes=100))


def test_cmyk_jpeg_becomes_rgb_red():
    img, _ = decode(corpus.cmyk_jpeg())
    r, g, b = img.getpixel((10, 10))
    assert img.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16_bit_inputs_scale_down_rather_than_clip():
    grey, _ = decode(corpus.png_16bit_grey(65535))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (255, 255, 255)
    mid, _ = decode(corpus.png_16bit_grey(32768))
    assert mid.getpixel((0, 0))[0] in (127, 128)
    rgb, _ = decode(corpus.png_16bit_rgb())
    assert rgb.getpixel((0, 0))[0] > 240 and rgb.getpixel((63, 0))[2] > 240


def test_palette_with_transparency_and_la_keep_alpha():
    img, _ = decode(corpus.palette_png_with_transparency())
    assert img.mode == "RGBA"
    assert img.getpixel((5, 5))[3] == 0 and img.getpixel((50, 5)) == (0, 0, 255, 255)
    la, _ = decode(corpus.la_png())
    assert (
        la.mode == "RGBA"
        and la.getpixel((5, 5))[3] == 0
        and la.getpixel((30, 5)) == (128, 128, 128, 255)
    )


def test_alpha_kept_in_webp_and_png_master_flattened_in_jpeg():
    result = render_all(corpus.palette_png_with_transparency(), CONFIG)
    assert result.master.format == "png" and _open(result.master.data).mode == "RGBA"
    webp = next(r for r in result.renditions if r.format == "webp")
    assert _open(webp.data).mode == "RGBA"
    jpeg = next(r for r in result.renditions if r.name == "w400" and r.format == "jpeg")
    assert _open(jpeg.data).convert("RGB").getpixel((2, 2)) >= (240, 240, 240)  # white, not black


def test_jpeg_background_is_configurable():
    config = CONFIG.model_copy(update={"background": "#ff0000"})
    result = render_all(corpus.palette_png_with_transparency(), config)
    jpeg = next(r for r in result.renditions if r.name == "w400" and r.format == "jpeg")
    r, g, b = _open(jpeg.data).convert("RGB").getpixel((2, 2))
    assert r > 230 and g < 40 and b < 40


def test_adobe_rgb_is_converted_to_srgb():
    data = corpus.adobe_rgb_jpeg((60, 160, 60))
    img, _ = decode(data)
    source = _open(data)
    expected = ImageCms.profileToProfile(
        source,
        ImageCms.ImageCmsProfile(io.BytesIO(corpus.adobe_rgb_icc())),
        ImageCms.createProfile("sRGB"),
    ).getpixel((5, 5))
    got = img.getpixel((5, 5))
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 2
    assert max(abs(a - b) for a, b in zip(got, source.getpixel((5, 5)), strict=True)) > 10
    assert "icc_profile" not in _open(render_all(data, CONFIG).master.data).info


def test_metadata_and_gps_are_stripped_from_every_output():
    data = corpus.jpeg_with_gps()
    assert _open(data).getexif().get_ifd(0x8825)
    result = render_all(data, CONFIG)
    for output in [result.master, *result.renditions]:
        out = _open(output.data)
        assert not out.getexif(), output.name
        assert b"Exif" not in output.data and b"CameraMaker" not in output.data


def test_first_frame_of_animated_gif_and_multipage_tiff():
    gif, info = decode(corpus.animated_gif())
    assert info.frames == 3 and gif.getpixel((5, 5))[0] > 200  # red, the first frame
    tiff, info = decode(corpus.multipage_tiff())
    assert info.frames == 2 and tiff.getpixel((5, 5)) == (255, 255, 0)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (20000, 10), (10, 20000)])
def test_extreme_shapes_render_without_crashing(width, height):
    data = corpus._save(Image.new("RGB", (width, height), "orange"), "PNG")
    result = render_all(data, CONFIG)
    thumb = next(r for r in result.renditions if r.name == "thumb_300")
    assert (thumb.width, thumb.height) == (300, 300)
    w400 = next(r for r in result.renditions if r.name == "w400" and r.format == "jpeg")
    assert w400.width == min(400, width) and w400.height >= 1
    # WebP cannot hold a side over 16383 px: such outputs are scaled down to fit
    assert all(max(r.width, r.height) <= 16383 for r in result.renditions if r.format == "webp")


def test_default_renditions_sizes_and_formats():
    result = render_all(render_image(ImageSpec("r", 2400, 1600)), CONFIG)
    got = {(r.name, r.format): (r.width, r.height) for r in result.renditions}
    names = ("thumb_200", "thumb_300", "w400", "w800", "w1600")
    assert set(got) == {(n, f) for n in names for f in ("webp", "jpeg")}
    assert got[("thumb_300", "webp")] == (300, 300) and got[("thumb_200", "jpeg")] == (200, 200)
    assert got[("w800", "jpeg")] == (800, 533) and got[("w1600", "webp")] == (1600, 1067)
    assert _open(next(r.data for r in result.renditions if r.format == "webp")).format == "WEBP"
    assert (result.master.width, result.master.height) == (2000, 1333)


def test_limit_never_upscales():
    result = render_all(render_image(ImageSpec("s", 500, 300)), CONFIG)
    sizes = {r.name: (r.width, r.height) for r in result.renditions}
    assert (
        sizes["w1600"] == (500, 300) and sizes["w800"] == (500, 300) and sizes["w400"] == (400, 240)
    )


def test_crop_modes_fit_pad_fill_and_avif():
    config = RenditionConfig.model_validate(
        {
            "master": None,
            "placeholders": None,
            "renditions": [
                {
                    "name": "fit",
                    "width": 1000,
                    "height": 100,
                    "crop": "fit",
                    "formats": [{"format": "png"}],
                },
                {
                    "name": "pad",
                    "width": 300,
                    "height": 300,
                    "crop": "pad",
                    "formats": [{"format": "jpeg"}],
                },
                {
                    "name": "fill",
                    "width": 100,
                    "height": 300,
                    "crop": "fill",
                    "gravity": "entropy",
                    "formats": [{"format": "webp"}],
                },
                {
                    "name": "avif",
                    "width": 200,
                    "crop": "limit",
                    "formats": [{"format": "avif", "quality": 50}],
                },
            ],
        }
    )
    result = render_all(render_image(ImageSpec("c", 800, 400)), config)
    sizes = {r.name: (r.width, r.height) for r in result.renditions}
    assert sizes == {"fit": (200, 100), "pad": (300, 300), "fill": (100, 300), "avif": (200, 100)}
    pad = _open(next(r.data for r in result.renditions if r.name == "pad")).convert("RGB")
    assert pad.getpixel((150, 5)) >= (245, 245, 245)  # padding in the background colour
    assert _open(next(r.data for r in result.renditions if r.name == "avif")).format == "AVIF"
    assert result.master is None and result.lqip is None


def test_placeholders():
    result = render_all(render_image(ImageSpec("p", 800, 600)), CONFIG)
    assert result.lqip.startswith("data:image/webp;base64,") and len(result.lqip) < 600
    assert len(result.blurhash) == 28  # 4x3 components
    import base64

    tiny = _open(base64.b64decode(result.lqip.split(",", 1)[1]))
    assert max(tiny.size) == CONFIG.placeholders.lqip_width


def test_config_fingerprint_ignores_formatting_but_not_content():
    same = RenditionConfig.model_validate(CONFIG.model_dump())
    assert same.fingerprint() == CONFIG.fingerprint()
    changed = CONFIG.model_copy(update={"background": "#000000"})
    assert changed.fingerprint() != CONFIG.fingerprint()


def test_config_fingerprint_changes_with_the_renderer(monkeypatch):
    """A new way of making pixels from the same config marks every rendition stale."""
    import image_assets.imaging.config as config_module

    before = CONFIG.fingerprint()
    monkeypatch.setattr(config_module, "RENDERER_REVISION", config_module.RENDERER_REVISION + 1)
    assert CONFIG.fingerprint() != before


# ------------------------------------------------------------ shrink-on-load (libvips)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    got, want = a.convert("RGB").tobytes(), b.convert("RGB").tobytes()
    mse = sum((x - y) ** 2 for x, y in zip(got, want, strict=True)) / len(got)
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def _fine_detail(size=(1000, 750)) -> bytes:
    """Thin diagonal lines and small text: what a halved DCT decode loses."""
    img = Image.new("RGB", size, (235, 235, 230))
    draw = ImageDraw.Draw(img)
    for x in range(-size[1], size[0], 6):
        draw.line([(x, 0), (x + size[1], size[1])], fill=(40, 60, 120), width=1)
    for y in range(0, size[1], 24):
        draw.text((4, y), "ESTES ALPHA III 1/10 SCALE " * 6, fill=(10, 10, 10))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_shrink_on_load_keeps_the_detail_of_a_full_lanczos_resize():
    """A 2.5x step: decoding at half size first (Pillow's draft) lands near 29 dB
    from a Lanczos resize of the full decode; shrink-on-load must stay close to it."""
    data = _fine_detail()
    reference = _open(data).convert("RGB").resize((400, 300), Image.Resampling.LANCZOS)
    img, _ = decode(data, size=(400, 300))
    assert img.size == (400, 300) and img.mode == "RGB"
    assert _psnr(img, reference) > 45


def test_shrink_on_load_applies_the_embedded_profile():
    colour = (60, 160, 60)
    data = corpus._save(
        Image.new("RGB", (640, 640), colour),
        "JPEG",
        quality=100,
        icc_profile=corpus.adobe_rgb_icc(),
    )
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (4, 4), colour),
        ImageCms.ImageCmsProfile(io.BytesIO(corpus.adobe_rgb_icc())),
        ImageCms.createProfile("sRGB"),
    ).getpixel((1, 1))
    img, _ = decode(data, size=(64, 64))
    assert img.size == (64, 64)
    got = img.getpixel((30, 30))
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 3, (got, expected)
    assert max(abs(a - b) for a, b in zip(got, colour, strict=True)) > 10  # it did convert


def test_shrink_on_load_of_greyscale_and_damaged_jpegs():
    """Greyscale comes back RGB; a damaged JPEG is refused as the full decode refuses
    it (a broken Huffman table, no end marker), never returned as grey pixels."""
    grey = corpus._save(Image.linear_gradient("L").resize((600, 400)), "JPEG", quality=90)
    img, _ = decode(grey, size=(150, 100))
    assert (img.size, img.mode) == ((150, 100), "RGB")
    good = render_image(ImageSpec("damaged", 800, 600))
    at = good.index(b"\xff\xc4")  # the first Huffman table: counts far over 256 codes
    broken_table = good[: at + 5] + b"\xff" * 16 + good[at + 21 :]
    for damaged in (broken_table, good[: len(good) // 2]):
        for size in (None, (200, 150)):
            with pytest.raises(ImageRefused) as refused:
                decode(damaged, size=size)
            assert refused.value.kind.value == "corrupt", refused.value.reason


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 97),
    height=st.integers(1, 61),
    orientation=st.sampled_from([1, 6]),
    grey=st.booleans(),
)
def test_shrink_on_load_returns_exactly_the_size_asked(width, height, orientation, grey):
    spec = ImageSpec(seed="exact", width=97, height=61, orientation=orientation)
    data = render_image(spec)
    if grey:
        data = corpus._save(
            _open(data).convert("L"), "JPEG", quality=90, exif=_open(data).getexif()
        )
    oriented = (61, 97) if orientation == 6 else (97, 61)
    wanted = (min(width, oriented[0]), min(height, oriented[1]))
    img, info = decode(data, size=wanted)
    assert img.mode == "RGB"
    assert img.size == (wanted if wanted != oriented else oriented)
    assert info.orientation == orientation


def test_libvips_loads_only_where_jpegs_are_shrunk():
    """The code location (code server, sensors) imports decode but never loads libvips."""
    import subprocess
    import sys

    probe_code = "import sys, image_assets.definitions; print('pyvips' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", probe_code], capture_output=True, text=True, timeout=120
    )
    assert shown.stdout.strip() == "False", shown.stderr[-2000:]


def test_every_rendition_keeps_the_detail_of_a_full_lanczos_resize():
    """Smaller renditions are made from larger ones (1600 -> 800 -> 400): each step must
    be a Lanczos resample, not an area average (a box filter aliases lines and text:
    the 400 and 200 wide outputs came out at 37 and 40 dB, against 52 dB for Lanczos)."""
    from image_assets.imaging.config import RenditionConfig
    from image_assets.imaging.pipeline import render_all

    data = _fine_detail((2000, 1500))
    config = RenditionConfig.model_validate(
        {
            "master": None,
            "placeholders": None,
            "renditions": [
                {"name": f"w{w}", "width": w, "crop": "limit", "formats": [{"format": "png"}]}
                for w in (800, 400, 200)
            ],
        }
    )
    full = _open(data).convert("RGB")
    for made in render_all(data, config).renditions:
        reference = full.resize((made.width, made.height), Image.Resampling.LANCZOS)
        assert _psnr(_open(made.data), reference) > 45, made.name
