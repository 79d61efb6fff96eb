"""`image-assets serve` as the delivery tests start it: constants and the fixture's body."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from image_assets.cdn.service import SelfCdn
from image_assets.demo.images import ImageSpec, render_image
from image_assets.storage import LocalBlobStore
from image_assets_tests.processes import free_port

REPO = Path(__file__).resolve().parents[1]
SECRET = "delivery-s3cret-xyz"
UPLOAD_TOKEN = "upload-token-for-tests"
MASTER = "kits/estes/est0001"
ACTIVATED = "20261122T031500_u0123456789abcdef01234567"


def wait_until_healthy(
    base: str, process: subprocess.Popen, log: Path | None = None, seconds: float = 60
) -> None:
    """Until ``base/healthz`` answers 200; fails with the log's tail if the service
    exits or does not answer within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        said = log.read_text()[-3000:] if log is not None and log.exists() else ""
        assert process.poll() is None, f"the service exited: {said}"
        assert time.monotonic() < deadline, f"the service did not start: {said}"
        time.sleep(0.2)


def started_service(tmp_path_factory):
    """`image-assets serve` on a free port, strict, over a store holding two masters."""
    data = tmp_path_factory.mktemp("delivery")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cdn = SelfCdn(LocalBlobStore(data / "cdn"), base, secret=SECRET)
    photo = render_image(ImageSpec("delivery", 1600, 1200))
    cdn.upload(photo, MASTER, format="jpeg", sha256="a" * 64, width=1600, height=1200)
    activated = data / "public" / "uploads" / ACTIVATED  # as activation lays it out
    activated.mkdir(parents=True)
    (activated / "master.jpg").write_bytes(render_image(ImageSpec("upload", 900, 600)))
    logo = render_image(ImageSpec("logo", 200, 100, format="PNG", alpha=True))
    cdn.upload(logo, "kits/brand/logo", format="png", sha256="b" * 64, width=200, height=100)
    env = {
        **os.environ,
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_DELIVERY_SECRET": SECRET,
        "IMAGE_ASSETS_DELIVERY_STRICT": "1",
        "IMAGE_ASSETS_UPLOAD_TOKEN": UPLOAD_TOKEN,
    }
    log = (data / "serve.log").open("w")
    readme = (REPO / "README.md").read_text()
    (command,) = [
        line for line in readme.splitlines() if line.startswith(".venv/bin/image-assets serve")
    ]
    process = subprocess.Popen(  # the README's command, on a free port
        command.replace("--port 8090", f"--port {port}").split(),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until_healthy(base, process, data / "serve.log")
    yield {
        "base": base,
        "cdn": cdn,
        "log": data / "serve.log",
        "photo": photo,
        "data": data,
        "pid": process.pid,
    }
    process.terminate()
    process.wait(timeout=20)
    log.close()
