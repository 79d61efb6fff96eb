"""The delivery service as a real process: Cloudinary's URL grammar, built by the official
SDK, served from the platform's own store; signatures, HTTP caching, hostile requests."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from image_assets.cdn.service import SelfCdn
from image_assets.delivery.cache import DiskCache
from image_assets.delivery.grammar import (
    CROPS,
    Component,
    GrammarError,
    Limits,
    Overlay,
    parse_component,
    parse_path,
)
from image_assets.demo.images import ImageSpec, render_image
from image_assets.imaging.config import load_rendition_config
from image_assets.imaging.geometry import target_size
from image_assets.storage import LocalBlobStore
from image_assets_tests.delivery_service import (
    ACTIVATED,
    MASTER,
    SECRET,
    UPLOAD_TOKEN,
)
from image_assets_tests.processes import free_port, wait_until_up


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _raw_get(base: str, path: str) -> tuple[int, str]:
    """GET ``path`` byte for byte (httpx would normalise ``..`` away before sending)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def _image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


# ------------------------------------------------------------------ the grammar


_sizes = st.integers(min_value=1, max_value=4000)
_components = st.builds(
    Component,
    width=st.one_of(st.none(), _sizes),
    height=st.one_of(st.none(), _sizes),
    crop=st.one_of(st.none(), st.sampled_from(CROPS)),
    gravity=st.one_of(st.none(), st.sampled_from(["center", "auto"])),
    aspect_ratio=st.one_of(st.none(), st.sampled_from([0.5, 1.0, 1.5, 2.0])),
    dpr=st.one_of(st.none(), st.sampled_from([1.0, 1.5, 2.0, 3.0])),
    fetch_format=st.one_of(st.none(), st.sampled_from(["auto", "jpg", "png", "webp", "avif"])),
    quality=st.one_of(st.none(), st.sampled_from(["auto", "auto:eco", "80", "35"])),
    background=st.one_of(st.none(), st.sampled_from(["ffffff", "00ff00", "00000000"])),
    blur=st.one_of(st.none(), st.integers(min_value=1, max_value=2000)),
)


@settings(max_examples=300)
@given(_components)
def test_a_component_reads_back_as_written(component):
    if component.blur is not None:
        component = Component(**{**component.__dict__, "grayscale": False})
    text = component.text()
    if not text:
        with pytest.raises(GrammarError):
            parse_component(text)
        return
    assert parse_component(text) == component


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_any_path_parses_or_is_refused_with_a_reason(tail):
    try:
        request = parse_path("/image/upload/" + tail)
    except GrammarError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert ".." not in request.public_id and not request.public_id.startswith("/")
    assert "%" not in request.public_id and "\\" not in request.public_id


def test_overlays_named_and_limits_parse():
    watermark = parse_component("fl_relative,g_south_east,l_kits:brand:logo,o_60,w_0.2,x_10")
    assert watermark.overlay == Overlay("kits/brand/logo", 60, True) and watermark.width == 0.2
    assert parse_path("/image/upload/t_thumb_300/v3/kits/a/b.jpg").named_only
    for bad, reason in [
        ("w_5000", "out of range"),
        ("dpr_100", "out of range"),
        ("zz_1", "unknown parameter"),
        ("w_0.5", "fraction needs an overlay"),
        ("w_10,w_20", "given twice"),
        ("g_north", "compass gravity is for overlays"),
        ("l_..:etc:passwd", "not a public id"),
        ("t_thumb,w_10", "stands alone"),
    ]:
        with pytest.raises(GrammarError, match=reason):
            parse_component(bad, Limits())
    chain = "/".join(["w_10"] * 9)
    with pytest.raises(GrammarError, match="chained"):
        parse_path(f"/image/upload/{chain}/v1/kits/a/b.jpg")


# ------------------------------------------------------------------ the service


def test_every_sdk_url_for_the_configured_renditions_is_served(service):
    """What the `self` backend writes into the kits CSV: one URL per rendition and format,
    built by the Cloudinary SDK with the service as host, signed."""
    cdn, config = service["cdn"], load_rendition_config()
    for spec in config.renditions:
        for output in spec.formats:
            url = cdn.delivery_url(
                MASTER,
                width=spec.width,
                height=spec.height,
                crop=spec.crop,
                format=output.format,
            )
            assert url.startswith(service["base"] + "/image/upload/s--")
            response = httpx.get(url)
            img = _image(response)
            assert img.size == target_size(spec, 1600, 1200), (url, img.size)
            assert img.format.lower() == output.format
            assert response.headers["content-type"] == f"image/{output.format}"
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_signed_urls_pass_and_tampered_or_unsigned_ones_do_not(service):
    cdn, base = service["cdn"], service["base"]
    url = cdn.delivery_url(MASTER, width=300, height=300, crop="fill", format="webp")
    assert httpx.get(url).status_code == 200
    tampered = url.replace("w_300", "w_301")
    assert httpx.get(tampered).status_code == 403
    unsigned = f"{base}/image/upload/c_fill,h_300,w_300/v1/{MASTER}.jpg"
    response = httpx.get(unsigned)
    assert response.status_code == 403 and response.text == "invalid or missing URL signature\n"
    # named transformations and the untransformed master need no signature
    assert _image(httpx.get(f"{base}/image/upload/t_thumb_300/v1/{MASTER}.webp")).size == (300, 300)
    assert _image(httpx.get(f"{base}/image/upload/v1/{MASTER}.jpg")).size == (1600, 1200)


def test_http_caching_head_and_format_negotiation(service):
    base = service["base"]
    url = f"{base}/image/upload/t_thumb_300/v1/{MASTER}.jpg"
    first = httpx.get(url)
    etag = first.headers["etag"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    unversioned = httpx.get(f"{base}/image/upload/t_thumb_300/{MASTER}.jpg")
    assert unversioned.headers["cache-control"] == "public, max-age=3600"
    cdn = service["cdn"]
    auto = cdn.delivery_url(MASTER, width=200, crop="limit", format="auto")
    for accept, expected in [
        ("image/avif,image/webp,*/*", "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("*/*", "image/jpeg"),
    ]:
        response = httpx.get(auto, headers={"Accept": accept})
        assert response.headers["content-type"] == expected
        assert response.headers["vary"] == "Accept"
    assert "vary" not in first.headers


def test_hostile_requests_get_a_one_line_4xx(service):
    base = service["base"]
    for path, status, reason in [
        ("/image/upload/t_nothing/v1/kits/estes/est0001.jpg", 400, "unknown named"),
        ("/image/upload/t_thumb_300/v1/kits/estes/missing.jpg", 404, "no image"),
        ("/image/upload/t_thumb_300/v1/kits/%2e%2e/%2e%2e/etc/passwd", 400, "not a public id"),
        ("/image/upload/t_thumb_300/v1/kits/..%2f..%2fsecret.jpg", 400, "not a public id"),
        ("/image/upload/t_thumb_300/v1/../../etc/passwd", 400, "not a public id"),
        ("/image/upload/w_100000/v1/kits/estes/est0001.jpg", 400, "out of range"),
        ("/image/upload/dpr_100/v1/kits/estes/est0001.jpg", 400, "out of range"),
        ("/image/upload/" + "/".join(["t_thumb_300"] * 12) + "/v1/kits/a.jpg", 400, "chained"),
        ("/image/upload/zz_1/v1/kits/estes/est0001.jpg", 400, "unknown parameter"),
        ("/image/upload/" + "a" * 2000, 400, "longer than"),
    ]:
        code, text = _raw_get(base, path)
        assert code == status, (path, code, text)
        assert reason in text and text.count("\n") == 1, text
    # refused before anything is decoded: a flood of them does not grow the process
    before = _rss_mb(service["pid"])
    import cloudinary.utils

    options = service["cdn"]._url_options()
    for n in range(300):  # signed, but over the output limit once dpr applies
        url, _ = cloudinary.utils.cloudinary_url(
            MASTER, format="jpg", width=2100 + n, height=2000, crop="fill", dpr=2.0, **options
        )
        code, text = _raw_get(base, url.removeprefix(base))
        assert code == 400 and "over the 4000px limit" in text, (url, code, text)
    assert _rss_mb(service["pid"]) - before < 30


def test_overlay_watermark(service):
    cdn = service["cdn"]
    import cloudinary.utils

    url, _ = cloudinary.utils.cloudinary_url(
        MASTER,
        format="jpg",
        transformation=[
            {"width": 800, "crop": "scale"},
            {
                "overlay": "kits:brand:logo",
                "width": 0.25,
                "flags": "relative",
                "gravity": "south_east",
                "opacity": 60,
            },
        ],
        **cdn._url_options(),
    )
    marked = _image(httpx.get(url)).convert("RGB")
    plain_url, _ = cloudinary.utils.cloudinary_url(
        MASTER, format="jpg", width=800, crop="scale", **cdn._url_options()
    )
    plain = _image(httpx.get(plain_url)).convert("RGB")
    assert marked.size == plain.size == (800, 600)

    # the logo (a quarter of the width) sits in the bottom-right corner, nowhere else
    def differs(box):
        a, b = marked.crop(box).tobytes(), plain.crop(box).tobytes()
        return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)

    corner, elsewhere = differs((600, 500, 800, 600)), differs((0, 0, 200, 100))
    assert corner > 1 and elsewhere < 0.1, (corner, elsewhere)


def test_request_logs_are_common_log_format_without_the_secret(service):
    httpx.get(service["base"] + "/image/upload/t_thumb_300/v1/kits/estes/est0001.jpg")
    time.sleep(0.2)
    lines = service["log"].read_text().splitlines()
    logged = [line for line in lines if '"GET /image/upload/t_thumb_300/' in line]
    assert logged and all(line.startswith("127.0.0.1 - - [") for line in logged)
    assert logged[-1].split('" ')[1].split()[0] == "200"
    assert SECRET not in service["log"].read_text()


def test_the_disk_cache_stays_within_its_bound_and_forgets_one_image(tmp_path):
    cache = DiskCache(tmp_path, max_bytes=10_000)
    for i in range(40):
        cache.put(f"kits/a/{i % 4}", f'"{i}"', bytes(1000))
    assert cache.size() <= 10_000 and cache.get("kits/a/3", '"39"') == bytes(1000)
    assert cache.get("kits/a/0", '"0"') is None
    assert cache.get("kits/a/2", '"39"') is None  # keyed by image and ETag
    kept = cache.get("kits/a/2", '"38"')
    assert cache.forget("kits/a/3") >= 1 and cache.get("kits/a/3", '"39"') is None
    assert cache.get("kits/a/2", '"38"') == kept == bytes(1000)  # another image's results stay


def test_settings_read_a_mounted_secret_and_refuse_strict_without_one(tmp_path, monkeypatch):
    from image_assets.delivery.server import settings_from_env

    (tmp_path / "secret").write_text("from-a-file\n")
    monkeypatch.setenv("IMAGE_ASSETS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IMAGE_ASSETS_DELIVERY_SECRET", raising=False)
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_STRICT", "1")
    settings = settings_from_env("http://127.0.0.1:1")
    assert settings.secret == "from-a-file" and settings.strict
    assert "from-a-file" not in repr(settings) and "from-a-file" not in repr(settings.source)
    assert "thumb_300" in settings.named  # the renditions are named transformations
    monkeypatch.delenv("IMAGE_ASSETS_DELIVERY_SECRET_FILE")
    with pytest.raises(ValueError, match="needs IMAGE_ASSETS_DELIVERY_SECRET"):
        settings_from_env("http://127.0.0.1:1")


def test_settings_take_the_webp_effort_a_slot_per_core_and_the_line(tmp_path, monkeypatch):
    from image_assets.delivery.server import WAITING_PER_SLOT, settings_from_env
    from image_assets.machine import usable_cores

    monkeypatch.setenv("IMAGE_ASSETS_DATA_DIR", str(tmp_path))
    for name in ("SECRET", "SECRET_FILE", "STRICT", "RENDERS", "QUEUE", "WEBP_EFFORT"):
        monkeypatch.delenv(f"IMAGE_ASSETS_DELIVERY_{name}", raising=False)
    cores = usable_cores()  # the affinity and the cgroup's quota, not the machine's count
    settings = settings_from_env("http://127.0.0.1:1")
    assert settings.webp_effort == 4 and settings.max_concurrent_renders == cores
    assert settings.max_waiting_renders == WAITING_PER_SLOT * cores
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_RENDERS", "3")
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_WEBP_EFFORT", "2")
    settings = settings_from_env("http://127.0.0.1:1")
    assert settings.max_concurrent_renders == 3 and settings.webp_effort == 2
    assert settings.max_waiting_renders == WAITING_PER_SLOT * 3
    monkeypatch.setenv("IMAGE_ASSETS_DELIVERY_QUEUE", "0")  # no line: busy means 503
    assert settings_from_env("http://127.0.0.1:1").max_waiting_renders == 0
    for name, bad in (
        ("WEBP_EFFORT", "7"),
        ("WEBP_EFFORT", "fast"),
        ("RENDERS", "0"),
        ("QUEUE", "-1"),
        ("QUEUE", "many"),
    ):
        monkeypatch.setenv(f"IMAGE_ASSETS_DELIVERY_{name}", bad)
        with pytest.raises(ValueError, match=f"IMAGE_ASSETS_DELIVERY_{name} must be"):
            settings_from_env("http://127.0.0.1:1")
        monkeypatch.delenv(f"IMAGE_ASSETS_DELIVERY_{name}")


def test_the_webp_effort_reaches_the_encoder_and_the_etag(tmp_path):
    import anyio

    from image_assets.delivery.app import DeliverySettings, create_app
    from image_assets.delivery.render import render

    cdn = SelfCdn(LocalBlobStore(tmp_path / "cdn"), "http://testserver")
    photo = render_image(ImageSpec("effort", 1600, 1200))
    cdn.upload(photo, MASTER, format="jpeg", sha256="c" * 64, width=1600, height=1200)
    path = f"/image/upload/c_limit,f_webp,q_80,w_800/{MASTER}.jpg"
    answers = {}

    async def get(effort: int) -> httpx.Response:
        app = create_app(DeliverySettings(source=cdn, webp_effort=effort))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path)

    for effort in (0, 6):
        answers[effort] = anyio.run(get, effort)
        assert answers[effort].status_code == 200
        (chain,) = [parse_component("c_limit,f_webp,q_80,w_800")]
        expected = render(photo, (chain,), "webp", webp_effort=effort).data
        assert answers[effort].content == expected  # what that effort encodes, byte for byte
    assert answers[0].content != answers[6].content
    assert answers[0].headers["etag"] != answers[6].headers["etag"]  # strong ETags name bytes


def test_workers_fix_the_mmap_threshold_unless_the_environment_sets_it(monkeypatch):
    from image_assets.delivery.server import return_image_buffers_to_the_system

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert return_image_buffers_to_the_system() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    assert return_image_buffers_to_the_system() is (sys.platform == "linux")


_WORKER_MODULES = """
import sys
from starlette.testclient import TestClient
from image_assets.delivery.server import app_from_env

client = TestClient(app_from_env())
for path in sys.argv[1:]:
    assert client.get(path).status_code == 200, path
print(" ".join(m for m in ("duckdb", "cloudinary", "pyvips") if m in sys.modules))
"""


def test_a_worker_serves_images_without_duckdb_or_the_cloudinary_sdk(tmp_path):
    """They cost a worker about 23 and 11 MB; serving images needs neither, the
    gallery loads duckdb when it reads the catalog."""
    cdn = SelfCdn(LocalBlobStore(tmp_path / "cdn"), "http://127.0.0.1:8090")
    photo = render_image(ImageSpec("modules", 1200, 900))
    cdn.upload(photo, MASTER, format="jpeg", sha256="c" * 64, width=1200, height=900)
    import duckdb

    duckdb.connect(str(tmp_path / "catalog.duckdb")).close()  # a catalog before its first run
    activated = tmp_path / "public" / "uploads" / ACTIVATED
    activated.mkdir(parents=True)
    (activated / "master.jpg").write_bytes(photo)
    env = {**os.environ, "IMAGE_ASSETS_PROFILE": "local", "IMAGE_ASSETS_DATA_DIR": str(tmp_path)}
    env.pop("IMAGE_ASSETS_DELIVERY_SECRET", None)

    def loaded(*paths: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER_MODULES, *paths],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()[-1].split()  # after the request log lines

    assert loaded(f"/image/upload/c_limit,w_400/{MASTER}.webp") == ["pyvips"]
    assert "duckdb" in loaded("/gallery")  # it does read the catalog


@pytest.mark.parametrize(
    ("given", "merged"),
    [
        ("", "glibc.malloc.hugetlb=1"),
        ("glibc.malloc.arena_max=2", "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"),
        ("glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=0"),
        (
            "glibc.malloc.hugetlb=2:glibc.malloc.arena_max=2",
            "glibc.malloc.hugetlb=2:glibc.malloc.arena_max=2",
        ),
    ],
)
def test_huge_pages_join_the_operators_tunables_without_overriding_them(given, merged):
    from image_assets.delivery.supervisor import with_huge_pages

    assert with_huge_pages(given) == merged


def test_the_supervisor_loads_nothing_but_the_standard_library():
    """Every megabyte of the supervising process counts against the service's memory."""
    code = (
        "import sys, image_assets.delivery.supervisor;"
        "print(sorted(m for m in ('uvicorn', 'starlette', 'PIL', 'pydantic', 'pyvips')"
        " if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert shown.stdout.strip() == "[]", shown.stderr[-2000:]


def _environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a local ``serve`` over ``tmp_path`` with none of this shell's
    secret or glibc tunables, plus ``extra``."""
    env = {**os.environ, "IMAGE_ASSETS_PROFILE": "local", "IMAGE_ASSETS_DATA_DIR": str(tmp_path)}
    env.pop("IMAGE_ASSETS_DELIVERY_SECRET", None)
    env.pop("GLIBC_TUNABLES", None)
    return env | extra


def _serve_argv(port: int, workers: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "image_assets.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_serve_starts_its_workers_with_huge_pages_unless_told_otherwise(tmp_path):
    for operators, expected in (
        ({}, "glibc.malloc.hugetlb=1"),
        ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "glibc.malloc.hugetlb=0"),
    ):
        env = _serve_env(tmp_path, **operators)
        with _serving(tmp_path, free_port(), env=env, stdout=subprocess.DEVNULL) as process:
            workers = _workers(process.pid)
            assert len(workers) == 2
            for worker in workers:
                assert _environment(worker.pid)["GLIBC_TUNABLES"] == expected


def _workers(pid: int) -> list:
    import psutil

    found = []
    for child in psutil.Process(pid).children():
        try:
            if "image_assets.delivery.worker" in child.cmdline():
                found.append(child)
        except psutil.Error:  # a dead worker not reaped yet
            pass
    return found


@contextlib.contextmanager
def _serving(tmp_path: Path, port: int, **popen):
    """``serve --workers 2`` until the block ends; whatever the block did or failed to
    do, no process of it outlives the test."""
    import psutil

    env = popen.pop("env", None) or _serve_env(tmp_path)
    process = subprocess.Popen(_serve_argv(port), env=env, **popen)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        yield process
    finally:
        if process.poll() is None:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children()]
            for member in tree:
                member.kill()
            psutil.wait_procs(tree, timeout=20)
        process.wait(timeout=20)


def _gone(processes: list, seconds: float = 20) -> bool:
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=seconds)
    return not alive


@pytest.mark.skipif(sys.platform != "linux", reason="the workers follow the supervisor by prctl")
def test_the_supervisor_replaces_a_dead_worker_and_takes_every_worker_with_it(tmp_path):
    """A worker killed outright is replaced and the service answers on; SIGTERM stops
    the supervisor and its workers (exit 0); if the supervisor itself is killed
    with SIGKILL, its workers stop too instead of serving on alone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _serving(tmp_path, port, stderr=subprocess.PIPE, text=True) as process:
        first = _workers(process.pid)
        assert len(first) == 2
        first[0].kill()
        deadline = time.monotonic() + 30
        while {w.pid for w in _workers(process.pid)} & {first[0].pid} or len(
            _workers(process.pid)
        ) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        for _ in range(6):  # both workers answer (connections land on either)
            answer = httpx.get(f"{base}/healthz", headers={"Connection": "close"})
            assert answer.status_code == 200
        workers = _workers(process.pid)
        process.terminate()
        assert process.wait(timeout=40) == 0
        assert _gone(workers)
        assert f"worker {first[0].pid} exited with -9; starting another" in process.stderr.read()

    port = free_port()
    with _serving(tmp_path, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        workers = _workers(process.pid)
        assert len(workers) == 2
        process.kill()
        process.wait(timeout=10)
        assert _gone(workers), "workers went on serving after their supervisor was killed"


@pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP and /proc")
def test_a_worker_whose_event_loop_stops_is_killed_and_replaced(tmp_path):
    """A stopped worker (SIGSTOP: alive, but its loop sends no heartbeat) is killed
    after IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT seconds and another takes its place;
    a busy but healthy worker is left alone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _serve_env(tmp_path, IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT="3")
    with _serving(tmp_path, port, env=env, stderr=subprocess.PIPE, text=True) as process:
        time.sleep(4)  # longer than the timeout: healthy workers are not touched
        first = _workers(process.pid)
        assert len(first) == 2
        stopped = first[0]
        stopped.suspend()
        deadline = time.monotonic() + 20
        while stopped.is_running() and stopped.status() != "zombie":
            assert time.monotonic() < deadline, "the stopped worker was not killed"
            time.sleep(0.2)
        while len(_workers(process.pid)) < 2:
            assert time.monotonic() < deadline, "no worker took its place"
            time.sleep(0.2)
        assert first[1].pid in {w.pid for w in _workers(process.pid)}
        for _ in range(6):
            assert httpx.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
        process.terminate()
        process.wait(timeout=40)
        said = process.stderr.read()
    assert f"worker {stopped.pid} sent no heartbeat for 3 s; killed it; starting another" in said
    assert said.count("starting another") == 1, said


def test_a_wrong_worker_timeout_is_one_line(tmp_path):
    env = _serve_env(tmp_path, IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT="soon")
    done = subprocess.run(
        _serve_argv(free_port()), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: IMAGE_ASSETS_DELIVERY_WORKER_TIMEOUT must be a whole number of seconds,"
        " at least 2, not 'soon'"
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_busy_port_is_one_line_and_exit_2(tmp_path, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _serve_argv(port, workers),
            env=_serve_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot serve on 127.0.0.1:{port} (Address already in use)"
    ]


def test_a_wrong_setting_ends_serve_with_one_line_not_a_restart_loop(tmp_path):
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(tmp_path),
        "IMAGE_ASSETS_DELIVERY_WEBP_EFFORT": "9",
    }
    serve = [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(free_port())]
    for workers in ("1", "2"):
        done = subprocess.run(
            [*serve, "--workers", workers], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines == ["error: IMAGE_ASSETS_DELIVERY_WEBP_EFFORT must be 0 to 6, not '9'"]


# ------------------------------------------------------------------ direct uploads


def _grant(base: str, **asked) -> httpx.Response:
    body = {"filename": "My Kit Photo.JPG", "content_type": "image/jpeg", "size": 1000} | asked
    return httpx.post(
        f"{base}/uploads", json=body, headers={"Authorization": f"Bearer {UPLOAD_TOKEN}"}
    )


def test_a_direct_upload_lands_in_incoming_whole_and_only_there(service):
    from image_assets.uploads.intake import LocalIncoming

    base, incoming = service["base"], service["data"] / "incoming"
    assert httpx.post(f"{base}/uploads", json={}).status_code == 401
    wrong = httpx.post(f"{base}/uploads", json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    photo = service["photo"]
    answer = _grant(base, size=len(photo))
    assert answer.status_code == 201, answer.text
    grant = answer.json()
    assert grant["method"] == "PUT" and grant["name"].startswith("my-kit-photo-")
    assert grant["name"].endswith(".jpg") and grant["max_bytes"] == 50 * 1024 * 1024
    put = httpx.put(grant["url"], content=photo, headers=grant["headers"])
    assert put.status_code == 201 and put.json() == {"name": grant["name"], "bytes": len(photo)}
    assert (incoming / grant["name"]).read_bytes() == photo
    assert [p.name for p in incoming.iterdir()] == [grant["name"]]  # no partial left behind
    arrivals = [a.name for a in LocalIncoming(incoming, service["data"] / "claimed").scan()]
    assert arrivals == [grant["name"]]  # what the upload sensor will claim
    again = httpx.put(grant["url"], content=photo, headers=grant["headers"])
    assert again.status_code == 409  # a grant names one file: nothing is replaced


def test_direct_upload_refusals_are_clear_and_leave_nothing(service):
    from image_assets.delivery.direct_upload import put_grant

    base, incoming = service["base"], service["data"] / "incoming"
    before = sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []
    assert _grant(base, content_type="text/html").status_code == 400
    too_big = _grant(base, size=60 * 1024 * 1024)
    assert too_big.status_code == 413 and "limit" in too_big.text
    assert _grant(base, size="many").status_code == 400
    grant = _grant(base).json()
    # a different Content-Type than granted
    wrong_type = httpx.put(grant["url"], content=b"x" * 10, headers={"Content-Type": "image/png"})
    assert wrong_type.status_code == 400 and "image/jpeg" in wrong_type.text
    # a tampered limit
    tampered = grant["url"].replace(f"max={grant['max_bytes']}", "max=999999999")
    answer = httpx.put(tampered, content=b"x", headers=grant["headers"])
    assert answer.status_code == 403 and "signature" in answer.text
    # expired: a grant minted an hour ago with the service's key
    key = hashlib.sha256(b"direct-uploads\n" + SECRET.encode()).digest()
    old = put_grant(
        key, base, "old-0123456789abcdef.jpg", "image/jpeg", 100, now=time.time() - 3600
    )
    expired = httpx.put(old.url, content=b"x", headers=old.headers)
    assert expired.status_code == 403 and "expired at" in expired.text
    # over the granted size: declared, or streamed without a length
    small = put_grant(key, base, "small-0123456789abcdef.jpg", "image/jpeg", 100)
    declared = httpx.put(small.url, content=b"x" * 101, headers=small.headers)
    assert declared.status_code == 413

    def chunks():
        for _ in range(10):
            yield b"x" * 50

    streamed = httpx.put(small.url, content=chunks(), headers=small.headers)
    assert streamed.status_code == 413
    assert sorted(p.name for p in incoming.iterdir()) == before  # nothing written, no partials


def test_aws_direct_uploads_are_presigned_posts_s3_holds_to_their_policy(aws_env, tmp_path):
    """On the aws profile the grant is an S3 presigned POST; a strict checker of S3's POST
    policy rules stands where S3 would (moto accepts any post) and stores what passes."""
    import boto3
    from botocore.config import Config

    from image_assets_tests.fake_s3_post import S3PostChecker

    s3 = boto3.client("s3")
    for bucket in ("cdn-direct", "uploads-direct"):
        s3.create_bucket(Bucket=bucket)
    port = free_port()
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "aws",
        "IMAGE_ASSETS_CDN_BUCKET": "cdn-direct",
        "IMAGE_ASSETS_UPLOADS_BUCKET": "uploads-direct",
        "IMAGE_ASSETS_DELIVERY_SECRET": SECRET,
        "IMAGE_ASSETS_UPLOAD_TOKEN": UPLOAD_TOKEN,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    checker = S3PostChecker(
        {"testing": "testing"},
        lambda bucket, key, data, ctype: s3.put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=ctype
        ),
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/healthz", process, 30)
        photo = render_image(ImageSpec("direct", 640, 480))

        def post(grant: dict, data: bytes, **changed: str) -> httpx.Response:
            url = grant["url"].replace(aws_env, checker.url)  # the checker stands in for S3
            fields = grant["fields"] | changed
            return httpx.post(url, data=fields, files={"file": ("x.jpg", data, "image/jpeg")})

        grant = _grant(base, size=len(photo)).json()
        assert grant["method"] == "POST" and grant["fields"]["key"] == f"incoming/{grant['name']}"
        assert post(grant, photo).status_code == 204
        held = s3.get_object(Bucket="uploads-direct", Key=f"incoming/{grant['name']}")
        assert held["Body"].read() == photo and held["ContentType"] == "image/jpeg"

        refused = [
            post(grant, photo, key="incoming/elsewhere.jpg"),  # another key
            post(grant, photo, **{"Content-Type": "text/html"}),  # another type
            post(grant, b"x" * (grant["max_bytes"] + 1)),  # over the size
        ]
        assert [r.status_code for r in refused] == [403, 403, 400]
        assert "EntityTooLarge" in refused[2].text
        v4 = boto3.client("s3", config=Config(signature_version="s3v4"))
        expired = v4.generate_presigned_post(
            "uploads-direct",
            "incoming/late.jpg",
            Fields={"Content-Type": "image/jpeg"},
            Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 100]],
            ExpiresIn=-60,
        )
        late = post({"url": expired["url"], "fields": expired["fields"]}, b"x" * 10)
        assert late.status_code == 403 and "Policy expired" in late.text
        # boto3's default signs POST policies with SigV2, which S3 no longer takes everywhere
        v2 = s3.generate_presigned_post(
            "uploads-direct",
            "incoming/v2.jpg",
            Fields={"Content-Type": "image/jpeg"},
            Conditions=[{"Content-Type": "image/jpeg"}],
            ExpiresIn=60,
        )
        assert post({"url": v2["url"], "fields": v2["fields"]}, b"x").status_code == 403
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="uploads-direct")["Contents"]]
        assert keys == [f"incoming/{grant['name']}"]  # only the granted upload landed
    finally:
        checker.stop()
        process.terminate()
        process.wait(timeout=20)


def test_activated_uploads_are_served_by_their_public_id(service):
    base = service["base"]
    master = httpx.get(f"{base}/image/upload/v1/uploads/{ACTIVATED}.jpg")
    assert _image(master).size == (900, 600)
    thumb = httpx.get(f"{base}/image/upload/t_thumb_300/v1/uploads/{ACTIVATED}.webp")
    assert _image(thumb).size == (300, 300) and thumb.headers["content-type"] == "image/webp"
    for missing in ("uploads/u-not-activated", f"uploads/{ACTIVATED}/master"):
        assert httpx.get(f"{base}/image/upload/v1/{missing}.jpg").status_code == 404


def test_rendition_urls_take_the_version_from_the_caller_without_reading_the_store():
    from image_assets.storage import MemoryBlobStore

    class CountingStore(MemoryBlobStore):
        reads = 0

        def get(self, key: str) -> bytes:
            CountingStore.reads += 1
            return super().get(key)

    cdn = SelfCdn(CountingStore(), "http://127.0.0.1:1")
    url = cdn.delivery_url("kits/a/b", width=300, crop="limit", format="webp", version=7)
    assert "/v7/kits/a/b" in url and CountingStore.reads == 0


def test_the_gallery_lists_activated_uploads_with_thumbnails_that_open(service):
    page = httpx.get(f"{service['base']}/gallery")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "No catalog yet" in page.text  # nothing materialized in this store: said so
    (src,) = [
        part.split('"')[0]
        for part in page.text.split('<img class="ph" src="')[1:]
        if ACTIVATED in part.split('"')[0]
    ]
    assert src == f"/image/upload/t_thumb_300/uploads/{ACTIVATED}.jpg"  # named: no signature
    thumb = httpx.get(service["base"] + src)
    assert thumb.status_code == 200, thumb.text
    assert _image(thumb).size == (300, 300)
    assert (
        httpx.get(f"{service['base']}/", follow_redirects=False).headers["location"] == "/gallery"
    )


def test_a_record_without_its_master_is_not_served(tmp_path):
    """The image service reads the record and the master without a separate
    existence check: a master gone from under its record is still a 404 (KeyError)."""
    store = LocalBlobStore(tmp_path / "cdn")
    cdn = SelfCdn(store, "http://127.0.0.1:8090")
    photo = render_image(ImageSpec("gone", 300, 200))
    cdn.upload(photo, MASTER, format="jpeg", sha256="d" * 64, width=300, height=200)
    asset, data = cdn.read(MASTER)
    assert (asset.sha256, data) == ("d" * 64, photo)
    store.delete(f"{MASTER}.jpg")
    with pytest.raises(KeyError):
        cdn.read(MASTER)
    with pytest.raises(KeyError):
        cdn.read("kits/estes/never-uploaded")


def _put_head(url: str, headers: dict[str, str], length: int) -> tuple[str, int, bytes]:
    """(host, port, request head) of a PUT of ``length`` bytes to ``url``, for a raw socket."""
    parts = httpx.URL(url)
    lines = [f"PUT {parts.raw_path.decode()} HTTP/1.1", f"Host: {parts.host}:{parts.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "", ""]
    return parts.host, parts.port, "\r\n".join(lines).encode()


def _settled(incoming: Path, seconds: float = 3) -> list[str]:
    """The names in ``incoming`` once nothing has changed there for a moment."""
    deadline = time.monotonic() + seconds
    names = sorted(p.name for p in incoming.iterdir())
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = sorted(p.name for p in incoming.iterdir())
        if now == names:
            return names
        names = now
    return names


def test_a_slow_writer_lands_whole_and_a_writer_that_hangs_up_leaves_nothing(service):
    """The body in pauses of 0.3 s arrives whole under its name; a client that hangs
    up half way leaves no file and no partial in incoming."""
    base, incoming = service["base"], service["data"] / "incoming"
    photo = service["photo"]
    grant = _grant(base, size=len(photo)).json()
    host, port, head = _put_head(grant["url"], grant["headers"], len(photo))
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(head)
        step = len(photo) // 5 + 1
        for start in range(0, len(photo), step):
            time.sleep(0.3)
            conn.sendall(photo[start : start + step])
        answer = conn.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 201"), answer
    assert (incoming / grant["name"]).read_bytes() == photo

    before = _settled(incoming)
    grant = _grant(base, size=len(photo)).json()
    host, port, head = _put_head(grant["url"], grant["headers"], len(photo))
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(head + photo[: len(photo) // 2])
        time.sleep(0.5)
    assert _settled(incoming) == before
    assert not (incoming / grant["name"]).exists()


def test_a_writer_that_stalls_is_cut_off_with_408_and_leaves_nothing(tmp_path):
    """IMAGE_ASSETS_UPLOAD_IDLE_SECONDS of silence in the middle of a body: 408 with the
    reason, the connection closed, nothing in incoming; bytes that keep coming, however
    slowly, are not cut off."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(tmp_path),
        "IMAGE_ASSETS_DELIVERY_SECRET": SECRET,
        "IMAGE_ASSETS_UPLOAD_TOKEN": UPLOAD_TOKEN,
        "IMAGE_ASSETS_UPLOAD_IDLE_SECONDS": "1",
    }
    command = [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until_up(f"{base}/healthz", process)
        incoming = tmp_path / "incoming"
        photo = render_image(ImageSpec("stall", 800, 600))
        grant = _grant(base, size=len(photo)).json()
        host, port, head = _put_head(grant["url"], grant["headers"], len(photo))
        with socket.create_connection((host, port), timeout=30) as conn:
            conn.sendall(head)
            for start in range(0, len(photo), len(photo) // 4 + 1):  # 0.6 s apart: in time
                conn.sendall(photo[start : start + len(photo) // 4 + 1])
                time.sleep(0.6)
            answer = conn.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 201"), answer
        landed = grant["name"]

        grant = _grant(base, size=len(photo)).json()
        host, port, head = _put_head(grant["url"], grant["headers"], len(photo))
        with socket.create_connection((host, port), timeout=30) as conn:
            started = time.monotonic()
            conn.sendall(head + photo[:1000])
            received = b""
            while chunk := conn.recv(4096):  # to the end: the server closes the connection
                received += chunk
            waited = time.monotonic() - started
            answer = received.decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "no bytes for 1 s after 1000: upload abandoned" in answer
        assert 0.9 < waited < 10
        assert [p.name for p in incoming.iterdir()] == [landed]  # no partial either
    finally:
        process.terminate()
        process.wait(timeout=20)
