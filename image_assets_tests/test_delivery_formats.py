"""f_auto's AVIF rule: AVIF where it pays, at the quality that matches WebP's look."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageOps

from image_assets.delivery.grammar import parse_path
from image_assets.delivery.render import (
    AVIF_EQUIVALENT,
    AVIF_PAYS_BELOW,
    encoder_quality,
    output_format,
    render,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from sample_images import photo_like

BOTH = "image/avif,image/webp,*/*"


def chain(transformation: str):
    return parse_path(f"/image/upload/{transformation}/kits/x/y.jpg").components


@given(st.integers(1, 99))
def test_avif_quality_follows_the_table_and_never_falls_as_quality_rises(quality):
    assert encoder_quality("webp", quality) == quality == encoder_quality("jpeg", quality)
    assert 1 <= encoder_quality("avif", quality) <= encoder_quality("avif", quality + 1) <= 100


def test_avif_quality_is_the_measured_equivalent_at_each_level():
    for webp, avif in AVIF_EQUIVALENT:
        assert encoder_quality("avif", webp) == avif


def test_f_auto_serves_avif_only_below_the_quality_where_it_stops_paying():
    assert output_format(chain("f_auto,w_800"), None, BOTH, "jpeg") == ("avif", True)
    assert output_format(chain("f_auto,q_auto:eco,w_800"), None, BOTH, "jpeg") == ("avif", True)
    for best in ("q_auto:best", f"q_{AVIF_PAYS_BELOW}", "q_100"):
        assert output_format(chain(f"f_auto,{best},w_800"), None, BOTH, "jpeg") == ("webp", True)
    # a client that takes only AVIF and JPEG gets JPEG at q90, never an AVIF 3x the bytes
    assert output_format(chain("f_auto,q_90"), None, "image/avif", "jpeg") == ("jpeg", True)
    # an explicit f_avif is what was asked for
    assert output_format(chain("f_avif,q_90"), None, "", "jpeg") == ("avif", False)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255**2 / ((x - y) ** 2).mean()))


def test_f_auto_avif_is_smaller_than_webp_at_about_the_same_psnr():
    """The rule's premise on a real render: an 800 px AVIF at q_auto has fewer bytes
    than the WebP at q_auto and about its PSNR against the full decode."""
    data = photo_like(1, size=(2400, 1800))
    full = Image.open(io.BytesIO(data)).convert("RGB")
    webp = render(data, chain("c_limit,w_800"), "webp")
    avif = render(data, chain("c_limit,w_800"), "avif")
    reference = ImageOps.fit(full, (webp.width, webp.height), Image.Resampling.LANCZOS)
    webp_db = _psnr(Image.open(io.BytesIO(webp.data)), reference)
    avif_db = _psnr(Image.open(io.BytesIO(avif.data)), reference)
    assert len(avif.data) < 0.85 * len(webp.data), (len(avif.data), len(webp.data))
    assert avif_db > webp_db - 0.5, (avif_db, webp_db)
