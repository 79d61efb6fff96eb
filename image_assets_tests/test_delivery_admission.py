"""The image service's render line: every core busy while anything waits, a bounded
line, a clear 503 with Retry-After past it, and every core for a lone render."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
import pyvips
from anyio import wait_all_tasks_blocked
from hypothesis import given, settings
from hypothesis import strategies as st

from image_assets.cdn.service import SelfCdn
from image_assets.delivery.admission import RETRY_AFTER_MAX, LineFull, RenderLine
from image_assets.demo.images import ImageSpec, render_image
from image_assets.machine import usable_cores
from image_assets.storage import LocalBlobStore
from image_assets_tests.delivery_service import wait_until_healthy
from image_assets_tests.processes import free_port

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import http_load  # noqa: E402  (the benchmark's own client shapes)

steps = st.lists(
    st.one_of(st.tuples(st.just("arrive"), st.integers(1, 6)), st.just(("finish", 1))),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(slots=st.integers(1, 3), waiting=st.integers(0, 4), events=steps)
def test_no_slot_idles_while_a_request_waits_and_the_line_is_bounded(slots, waiting, events):
    """Over any order of arrivals and finished renders: at most ``slots`` render, a
    slot is never free while a placed request waits, renders start in arrival order,
    and a request is refused exactly when ``slots + waiting`` are already placed,
    with a Retry-After of 1 to 60 s."""

    async def scenario() -> None:
        line = RenderLine(slots, waiting)
        arrived: list[int] = []
        started: list[int] = []
        finishing: dict[int, anyio.Event] = {}
        refused: list[tuple[int, int]] = []  # (request, placed when it came)

        async def request(n: int) -> None:
            placed_before = line.placed
            try:
                async with line.place():
                    arrived.append(n)
                    async with line.slot():
                        started.append(n)
                        finishing[n] = anyio.Event()
                        await finishing[n].wait()
            except LineFull as full:
                assert 1 <= full.retry_after <= RETRY_AFTER_MAX
                refused.append((n, placed_before))

        async with anyio.create_task_group() as tasks:
            count = 0
            for kind, amount in events:
                if kind == "arrive":
                    for _ in range(amount):
                        tasks.start_soon(request, count)
                        count += 1
                        await wait_all_tasks_blocked()
                else:
                    running = [n for n in started if not finishing[n].is_set()]
                    if running:
                        finishing[running[0]].set()
                await wait_all_tasks_blocked()
                assert line.rendering <= slots
                assert line.placed <= slots + waiting
                waiting_now = line.placed - line.rendering
                if waiting_now:
                    assert line.rendering == slots, "a slot is free while a request waits"
                assert started == arrived[: len(started)], "renders out of arrival order"
                for _, placed_before in refused:
                    assert placed_before >= slots + waiting
            for event in finishing.values():
                event.set()
            while len(started) < len(arrived):
                await wait_all_tasks_blocked()
                for event in finishing.values():
                    event.set()
        assert line.placed == 0 and line.rendering == 0
        assert len(started) + len(refused) == count

    anyio.run(scenario)


def test_retry_after_grows_with_the_line_ahead():
    line = RenderLine(2, 10)
    line.render_seconds = 0.5
    line.placed = 2
    short = line.retry_after()
    line.placed = 12
    assert short == 1 and line.retry_after() == 3  # 11 ahead x 0.5 s over 2 slots
    line.render_seconds = 100
    assert line.retry_after() == RETRY_AFTER_MAX


def test_a_lone_render_gets_every_core_for_libvips(tmp_path):
    from starlette.testclient import TestClient

    from image_assets.delivery.app import DeliverySettings, create_app

    cdn = SelfCdn(LocalBlobStore(tmp_path / "cdn"), "http://testserver")
    photo = render_image(ImageSpec("lone", 1600, 1200))
    cdn.upload(photo, "kits/x/one", format="jpeg", sha256="c" * 64, width=1600, height=1200)
    pyvips.concurrency_set(1)
    app = create_app(DeliverySettings(source=cdn, max_concurrent_renders=2))
    with TestClient(app) as client:
        answer = client.get("/image/upload/c_limit,w_800/kits/x/one.jpg")
    assert answer.status_code == 200
    assert pyvips.concurrency_get() == usable_cores()
    pyvips.concurrency_set(1)  # the process-wide default the other tests expect


@pytest.fixture
def busy_service(tmp_path):
    """``image-assets serve`` with one render slot and a line of two."""
    data = tmp_path / "data"
    cdn = SelfCdn(LocalBlobStore(data / "cdn"), "http://127.0.0.1:1")
    for i in range(4):
        photo = render_image(ImageSpec(f"busy{i}", 3000, 2000))
        cdn.upload(
            photo, f"kits/b/p{i}", format="jpeg", sha256=f"{i}" * 64, width=3000, height=2000
        )
    port = free_port()
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_DELIVERY_RENDERS": "1",
        "IMAGE_ASSETS_DELIVERY_QUEUE": "2",
    }
    for name in ("IMAGE_ASSETS_DELIVERY_SECRET", "IMAGE_ASSETS_DELIVERY_STRICT"):
        env.pop(name, None)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base, process, log)
    yield base, log
    process.terminate()
    process.wait(timeout=30)


def test_a_burst_past_the_line_is_answered_503_with_retry_after_and_nothing_breaks(
    busy_service,
):
    """16 requests at once on one slot and a line of two: every one is answered, 3 or
    more rendered, the rest 503 with a whole-second Retry-After; no 500, no traceback,
    and the service renders normally afterwards."""
    base, log = busy_service
    urls = [
        ("w", f"{base}/image/upload/c_limit,f_webp,w_{600 + n}/kits/b/p{n % 4}.jpg")
        for n in range(16)
    ]
    result = http_load.burst(urls)
    assert sum(result.statuses.values()) == 16, result.statuses
    assert set(result.statuses) <= {200, 503}, result.statuses
    assert result.statuses.get(200, 0) >= 3
    assert result.statuses.get(503, 0) >= 1 and result.retry_after == result.statuses[503]
    refused = httpx.get(f"{base}/healthz")
    assert refused.status_code == 200
    again = httpx.get(f"{base}/image/upload/c_limit,w_500/kits/b/p0.jpg", timeout=60)
    assert again.status_code == 200 and again.headers["content-type"] == "image/jpeg"
    text = log.read_text()
    assert "Traceback" not in text
    assert re.search(r'"GET /image/upload/\S+ HTTP/1.1" 503 ', text), text[-2000:]
