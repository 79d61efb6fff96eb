"""`image-assets render`: every input gets correct renditions or a clean one-line refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from image_assets.demo.images import ImageSpec, render_image
from image_assets_tests import corpus

REPO = Path(__file__).resolve().parents[1]


def _render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "image_assets.cli", "render", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_good_and_bad_files(tmp_path):
    files = {
        "rotated.jpg": render_image(ImageSpec("cli", 1600, 1000, orientation=6)),
        "alpha.png": corpus.rgba_png(),
        "error-page.jpg": b"<!DOCTYPE html><html><body>Not Found</body></html>",
        "bomb.png": corpus.png_claiming(60000, 60000),
        "truncated.jpg": render_image(ImageSpec("cut", 800, 600))[:3000],
        "evil.svg": b"<svg onload='alert(1)'><script>alert(2)</script></svg>",
        "empty.gif": b"",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    out = tmp_path / "out"
    result = _render(*(str(tmp_path / n) for n in files), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = {Path(j["input"]).name: j for j in map(json.loads, result.stdout.splitlines())}
    assert set(lines) == set(files)
    for bad in ("error-page.jpg", "bomb.png", "truncated.jpg", "evil.svg", "empty.gif"):
        assert lines[bad]["ok"] is False and lines[bad]["renditions"] == []
        assert lines[bad]["error"] and "\n" not in lines[bad]["error"]
    good = lines["rotated.jpg"]
    assert good["ok"] is True and good["error"] is None
    by_name = {(r["name"], r["format"]): r for r in good["renditions"]}
    assert set(by_name) >= {("thumb_200", "webp"), ("thumb_300", "jpeg"), ("w1600", "webp")}
    w800 = by_name[("w800", "webp")]
    with Image.open(w800["path"]) as img:
        assert img.size == (w800["width"], w800["height"]) == (800, 500)
    assert Path(w800["path"]).stat().st_size == w800["bytes"]
    assert lines["alpha.png"]["ok"] is True


def test_all_good_exits_zero_and_custom_config(tmp_path):
    config = tmp_path / "r.yaml"
    config.write_text(
        "renditions:\n  - {name: tiny, width: 64, height: 64, crop: fill, formats: [{format: avif, quality: 40}]}\n"
    )
    image = tmp_path / "a.jpg"
    image.write_bytes(render_image(ImageSpec("ok", 640, 480)))
    result = _render(str(image), "--out", str(tmp_path / "o"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    (line,) = map(json.loads, result.stdout.splitlines())
    assert [(r["name"], r["format"], r["width"], r["height"]) for r in line["renditions"]] == [
        ("tiny", "avif", 64, 64)
    ]


def test_bad_config_is_an_internal_error_exit_1(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("renditions: [{name: x}]\n")
    result = _render(str(config), "--out", str(tmp_path), "--config", str(config))
    assert result.returncode == 1 and "invalid rendition config" in result.stderr
