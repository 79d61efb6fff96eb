"""On-the-fly delivery: image-assets serve vs thumbor 7.8, side by side, on 127.0.0.1.

Both serve the same 12 MP JPEG originals (``--content``: ``natural``, a photograph's
statistics, or ``photo-like``, smooth shapes, the worst case for a low WebP
effort; see ``sample_images``) with the same worker count and no result storage
(a CDN in front would cache); the requests are equivalent:
300x300 fill, 800 wide limit, 1600 wide limit, WebP q80. Every request is for a
distinct (image, size) pair repeated round-robin, so nothing is served from a
cache of earlier answers. Measured at concurrency 1 and 8, bounded in count and
time: requests/s, p50/p95 latency, peak RSS of each server's process tree, and
output bytes per size, and what the bytes buy: the PSNR of each side's answers
against a Lanczos resize of the fully decoded original (the first three images);
ratios printed last.

    make thumbor   # thumbor 7.8 in .venv-thumbor, hash-locked
    .venv/bin/python benchmarks/delivery.py --thumbor .venv-thumbor/bin/thumbor

psutil comes with `make install` (the dev extra).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from PIL import Image, ImageOps
from renditions import psnr
from sample_images import natural, photo_like

from image_assets.cdn.service import SelfCdn
from image_assets.imaging.encoding import DEFAULT_WEBP_EFFORT
from image_assets.storage import LocalBlobStore

CONTENT = {"natural": natural, "photo-like": photo_like}

SIZES = {
    "300x300 fill": ("c_fill,f_webp,h_300,q_80,w_300", "300x300/filters:format(webp):quality(80)"),
    "800 limit": ("c_limit,f_webp,q_80,w_800", "fit-in/800x0/filters:format(webp):quality(80)"),
    "1600 limit": ("c_limit,f_webp,q_80,w_1600", "fit-in/1600x0/filters:format(webp):quality(80)"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to ``process`` and every process of its session (thumbor's forked
    workers are not stopped by their parent), then SIGKILL to what is left."""
    try:
        root = psutil.Process(process.pid)
        group = [root, *root.children(recursive=True)]
        os.killpg(process.pid, signal.SIGTERM)
    except (psutil.NoSuchProcess, ProcessLookupError):
        group = []
    process.wait(timeout=20)
    _, alive = psutil.wait_procs(group, timeout=20)
    for leftover in alive:
        leftover.kill()


class PeakRss:
    """Peak resident memory of a process and its children, sampled every 20 ms."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def load(urls: list[str], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    sizes: dict[str, list[int]] = {}
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=concurrency))

    def one(item: tuple[str, str]) -> None:
        label, url = item
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        answer = client.get(url, headers={"Accept": "image/webp"})
        took = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"{url}: {answer.status_code} {answer.text[:200]}")
        with lock:
            latencies.append(took)
            sizes.setdefault(label, []).append(len(answer.content))

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, urls))
    wall = time.perf_counter() - started
    client.close()
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "bytes": {label: statistics.mean(v) for label, v in sizes.items()},
    }


def quality(originals: dict[str, bytes], urls: dict[str, str]) -> dict[str, float]:
    """Mean PSNR per size of the answers at ``urls`` (``{label: url with {i}}``) against
    a Lanczos resize of each fully decoded original to the answer's size."""
    scores: dict[str, list[float]] = {}
    for i, data in originals.items():
        full = Image.open(io.BytesIO(data)).convert("RGB")
        for label, url in urls.items():
            answer = httpx.get(url.format(i=i), headers={"Accept": "image/webp"}, timeout=60)
            got = Image.open(io.BytesIO(answer.content)).convert("RGB")
            reference = ImageOps.fit(full, got.size, Image.Resampling.LANCZOS)
            scores.setdefault(label, []).append(psnr(got, reference))
    return {label: statistics.mean(values) for label, values in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--requests", type=int, default=120, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=120, help="time bound per run")
    parser.add_argument("--workers", type=int, default=2, help="server processes, both sides")
    parser.add_argument("--thumbor", default="thumbor", help="the thumbor executable")
    parser.add_argument("--content", choices=sorted(CONTENT), default="natural")
    parser.add_argument(
        "--webp-effort",
        type=int,
        default=DEFAULT_WEBP_EFFORT,
        choices=range(7),
        help="our IMAGE_ASSETS_DELIVERY_WEBP_EFFORT, default the service's"
        " (thumbor stays at Pillow's 4)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
    originals = work / "originals"
    originals.mkdir()
    cdn = SelfCdn(LocalBlobStore(work / "data" / "cdn"), "http://127.0.0.1:1")
    sampled: dict[str, bytes] = {}
    for i in range(args.images):
        data = CONTENT[args.content](i)
        if i < 3:
            sampled[str(i)] = data
        (originals / f"img{i}.jpg").write_bytes(data)
        cdn.upload(
            data, f"kits/bench/img{i}", format="jpeg", sha256=str(i), width=4000, height=3000
        )
    print(
        f"{args.images} {args.content} JPEGs 4000x3000; {args.workers} worker processes each;"
        " WebP q80;"
        f" our WebP effort {args.webp_effort}, thumbor's 4",
        flush=True,
    )

    ours_port, thumbor_port = free_port(), free_port()
    env = {
        **os.environ,
        "IMAGE_ASSETS_DATA_DIR": str(work / "data"),
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DELIVERY_WEBP_EFFORT": str(args.webp_effort),
    }
    env.pop("IMAGE_ASSETS_DELIVERY_SECRET", None)
    ours = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "image_assets.cli",
            "serve",
            "--port",
            str(ours_port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conf = work / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{originals}'\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        "ALLOW_UNSAFE_URL = True\n"
        "QUALITY = 80\nWEBP_QUALITY = 80\n"
    )
    thumbor = subprocess.Popen(
        [
            args.thumbor,
            "-p",
            str(thumbor_port),
            "-i",
            "127.0.0.1",
            "-c",
            str(conf),
            "--processes",
            str(args.workers),
            "-l",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its forked workers outlive a SIGTERM to the parent
    )
    try:
        wait_up(f"http://127.0.0.1:{ours_port}/healthz", ours)
        wait_up(f"http://127.0.0.1:{thumbor_port}/healthcheck", thumbor)
        results: dict[tuple[str, int], dict] = {}
        for concurrency in (1, 8):
            for side, port, process in (
                ("image-assets", ours_port, ours),
                ("thumbor", thumbor_port, thumbor),
            ):
                urls = []
                for n in range(args.requests):
                    label = list(SIZES)[n % len(SIZES)]
                    i = (n // len(SIZES)) % args.images
                    ours_t, thumbor_t = SIZES[label]
                    if side == "image-assets":
                        urls.append(
                            (
                                label,
                                f"http://127.0.0.1:{port}/image/upload/{ours_t}/kits/bench/img{i}.jpg",
                            )
                        )
                    else:
                        urls.append(
                            (label, f"http://127.0.0.1:{port}/unsafe/{thumbor_t}/img{i}.jpg")
                        )
                with PeakRss(process.pid) as rss:
                    result = load(urls, concurrency, args.seconds)
                result["rss_mb"] = rss.peak / 2**20
                results[(side, concurrency)] = result
                print(
                    f"  c={concurrency} {side:13s} {result['per_s']:6.1f} req/s  p50 {result['p50_ms']:6.0f} ms"
                    f"  p95 {result['p95_ms']:6.0f} ms  peak RSS {result['rss_mb']:5.0f} MB  ({result['requests']} requests)",
                    flush=True,
                )
        for concurrency in (1, 8):
            a, b = results[("image-assets", concurrency)], results[("thumbor", concurrency)]
            print(
                f"  ratios c={concurrency}: {a['per_s'] / b['per_s']:.2f}x req/s, p95 {a['p95_ms'] / b['p95_ms']:.2f}x,"
                f" peak RSS {a['rss_mb'] / b['rss_mb']:.2f}x"
            )
        ours_q = quality(
            sampled,
            {
                label: f"http://127.0.0.1:{ours_port}/image/upload/{t}/kits/bench/img{{i}}.jpg"
                for label, (t, _) in SIZES.items()
            },
        )
        thumbor_q = quality(
            sampled,
            {
                label: f"http://127.0.0.1:{thumbor_port}/unsafe/{t}/img{{i}}.jpg"
                for label, (_, t) in SIZES.items()
            },
        )
        a, b = results[("image-assets", 8)], results[("thumbor", 8)]
        for label in SIZES:
            print(
                f"  bytes {label:13s} {a['bytes'][label]:9.0f} vs {b['bytes'][label]:9.0f}"
                f"  ({100 * (a['bytes'][label] / b['bytes'][label] - 1):+.1f}%)"
                f"  PSNR {ours_q[label]:.2f} vs {thumbor_q[label]:.2f} dB"
            )
    finally:
        ours.terminate()  # its supervisor stops its workers
        ours.wait(timeout=40)
        stop_group(thumbor)


if __name__ == "__main__":
    main()
