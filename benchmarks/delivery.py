"""On-the-fly delivery: image-assets serve vs thumbor 7.8 vs ipx 3.1 (sharp), on 127.0.0.1.

The three serve the same 12 MP JPEG originals (``--content``: ``natural``, a
photograph's statistics, or ``photo-like``, smooth shapes, the worst case for a
low WebP effort; see ``sample_images``) with no result storage (a CDN in front
would cache); the requests are equivalent: 300x300 fill, 800 wide, 1600 wide,
WebP q80 at libwebp effort 4. Each side runs as its users run it: ours as
``image-assets serve`` (one worker process by default, a render slot per core),
thumbor as one single-threaded process per core, ipx as one Node.js process
(sharp: libvips threads and libuv's pool).

Driven the way clients drive an image service (``http_load``): 8 persistent
keep-alive connections (a CDN shield, a browser) and 8 clients opening a new
connection per request, at concurrency 8 and 1, then a burst of 64 at once; the
sides take turns at every level. Reported per run: requests/s, p50/p95 latency,
the machine's CPU busy share (idle cores while requests wait show here), the peak
RSS of the server's process tree; then ratios, and per size the output bytes and
what they buy: the PSNR of each side's answers against a Lanczos resize of the
fully decoded original (the first three images).

    make thumbor ipx   # thumbor 7.8 in .venv-thumbor (hash-locked), ipx in .ipx (npm lock)
    .venv/bin/python benchmarks/delivery.py

psutil comes with `make install` (the dev extra).
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
from pathlib import Path

import http_load
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

# label: (ours, thumbor's, ipx's) spelling of the same request
SIZES = {
    "300x300 fill": (
        "c_fill,f_webp,h_300,q_80,w_300",
        "300x300/filters:format(webp):quality(80)",
        "s_300x300,fit_cover,f_webp,q_80",
    ),
    "800 limit": (
        "c_limit,f_webp,q_80,w_800",
        "fit-in/800x0/filters:format(webp):quality(80)",
        "w_800,f_webp,q_80",
    ),
    "1600 limit": (
        "c_limit,f_webp,q_80,w_1600",
        "fit-in/1600x0/filters:format(webp):quality(80)",
        "w_1600,f_webp,q_80",
    ),
}
SHAPES = ("keep-alive", "fresh")
BURST = 64


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


@dataclass
class Side:
    name: str
    process: subprocess.Popen
    base: str
    template: int  # which spelling of SIZES
    health: str

    def url(self, label: str, i: int) -> str:
        spelled = SIZES[label][self.template]
        if self.template == 0:
            return f"{self.base}/image/upload/{spelled}/kits/bench/img{i}.jpg"
        if self.template == 1:
            return f"{self.base}/unsafe/{spelled}/img{i}.jpg"
        return f"{self.base}/{spelled}/img{i}.jpg"


def start_ours(work: Path, workers: int, effort: int, queue: int | None) -> Side:
    port = free_port()
    env = {
        **os.environ,
        "IMAGE_ASSETS_DATA_DIR": str(work / "data"),
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DELIVERY_WEBP_EFFORT": str(effort),
    }
    if queue is not None:
        env["IMAGE_ASSETS_DELIVERY_QUEUE"] = str(queue)
    for name in ("IMAGE_ASSETS_DELIVERY_SECRET", "IMAGE_ASSETS_DELIVERY_STRICT"):
        env.pop(name, None)
    command = [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stopped like the peers: SIGTERM to its whole group
    )
    return Side("image-assets", process, f"http://127.0.0.1:{port}", 0, "/healthz")


def start_thumbor(work: Path, executable: str, processes: int) -> Side:
    port = free_port()
    conf = work / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{work / 'originals'}'\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
        "ALLOW_UNSAFE_URL = True\n"
        "QUALITY = 80\nWEBP_QUALITY = 80\n"
    )
    process = subprocess.Popen(
        [
            executable,
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "-c",
            str(conf),
            "--processes",
            str(processes),
            "-l",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its forked workers outlive a SIGTERM to the parent
    )
    return Side("thumbor", process, f"http://127.0.0.1:{port}", 1, "/healthcheck")


def start_ipx(work: Path, executable: str) -> Side:
    port = free_port()
    process = subprocess.Popen(
        [
            executable,
            "serve",
            "--dir",
            str(work / "originals"),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env={**os.environ, "NODE_ENV": "production"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Side("ipx", process, f"http://127.0.0.1:{port}", 2, "/w_8/img0.jpg")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def requests_for(side: Side, count: int, images: int) -> list[tuple[str, str]]:
    """``count`` requests: the sizes in turn over the images, round-robin."""
    labels = list(SIZES)
    return [
        (labels[n % len(labels)], side.url(labels[n % len(labels)], (n // len(labels)) % images))
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--requests", type=int, default=120, help="per side, shape and level")
    parser.add_argument("--seconds", type=float, default=120, help="time bound per run")
    parser.add_argument("--workers", type=int, default=1, help="our worker processes")
    parser.add_argument(
        "--queue", type=int, help="our IMAGE_ASSETS_DELIVERY_QUEUE (default: the service's)"
    )
    parser.add_argument("--thumbor", default=".venv-thumbor/bin/thumbor", help="(make thumbor)")
    parser.add_argument("--ipx", default=".ipx/node_modules/.bin/ipx", help="(make ipx)")
    parser.add_argument(
        "--sides", default="image-assets,thumbor,ipx", help="comma-separated, ours first"
    )
    parser.add_argument("--burst", type=int, default=BURST, help="requests at once, last")
    parser.add_argument("--content", choices=sorted(CONTENT), default="natural")
    parser.add_argument(
        "--webp-effort",
        type=int,
        default=DEFAULT_WEBP_EFFORT,
        choices=range(7),
        help="our IMAGE_ASSETS_DELIVERY_WEBP_EFFORT, default the service's"
        " (thumbor and ipx stay at 4)",
    )
    args = parser.parse_args()
    names = args.sides.split(",")
    cores = os.cpu_count() or 1

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
        f"{args.images} {args.content} JPEGs 4000x3000; WebP q80, our effort {args.webp_effort},"
        f" the peers' 4; {cores} cores; ours {args.workers} worker process(es)"
        f"{f' (line of {args.queue})' if args.queue is not None else ''},"
        f" thumbor {cores} processes, ipx 1 Node.js process",
        flush=True,
    )
    starters = {
        "image-assets": lambda: start_ours(work, args.workers, args.webp_effort, args.queue),
        "thumbor": lambda: start_thumbor(work, args.thumbor, cores),
        "ipx": lambda: start_ipx(work, args.ipx),
    }
    sides = [starters[name]() for name in names]
    try:
        for side in sides:
            wait_up(side.base + side.health, side.process)
            http_load.run(requests_for(side, 3, args.images), 1, "keep-alive", 60)  # warm
        results: dict[tuple[str, str, int], http_load.LoadResult] = {}
        rss: dict[tuple[str, str, int], float] = {}
        for shape in SHAPES:
            for concurrency in (8, 1):
                for side in sides:
                    urls = requests_for(side, args.requests, args.images)
                    cpu_before = tree_cpu_seconds(side.process.pid)
                    with PeakRss(side.process.pid) as peak:
                        result = http_load.run(urls, concurrency, shape, args.seconds)
                    cpu_ms = 1000 * (tree_cpu_seconds(side.process.pid) - cpu_before)
                    key = (side.name, shape, concurrency)
                    results[key], rss[key] = result, peak.peak / 2**20
                    print(
                        f"  c={concurrency} {shape:10s} {side.name:12s} {result.per_s:6.1f} req/s"
                        f"  p50 {result.p50_ms:6.0f} ms  p95 {result.p95_ms:6.0f} ms"
                        f"  CPU busy {100 * result.cpu_busy:3.0f}%"
                        f" ({cpu_ms / max(1, result.requests):3.0f} ms a request)"
                        f"  peak RSS {rss[key]:5.0f} MB"
                        f"  ({result.requests} requests)",
                        flush=True,
                    )
        for side in sides:
            urls = requests_for(side, args.burst, args.images)
            with PeakRss(side.process.pid) as peak:
                result = http_load.burst(urls)
            answered = {k: v for k, v in sorted(result.statuses.items()) if k > 0}
            print(
                f"  burst of {args.burst} {side.name:12s} answered {sum(answered.values())}"
                f" ({', '.join(f'{v} x {k}' for k, v in answered.items())};"
                f" {result.retry_after} with Retry-After), none unanswered"
                if -1 not in result.statuses
                else f"  burst of {args.burst} {side.name:12s} {result.statuses[-1]} got no answer",
                f" last after {result.wall:.1f} s, peak RSS {peak.peak / 2**20:.0f} MB",
                flush=True,
            )
        ours = sides[0]
        for peer in sides[1:]:
            for shape in SHAPES:
                for concurrency in (8, 1):
                    a = results[(ours.name, shape, concurrency)]
                    b = results[(peer.name, shape, concurrency)]
                    ra, rb = (
                        rss[(ours.name, shape, concurrency)],
                        rss[(peer.name, shape, concurrency)],
                    )
                    print(
                        f"  vs {peer.name:8s} c={concurrency} {shape:10s}"
                        f" {a.per_s / b.per_s:.2f}x req/s, p95 {a.p95_ms / b.p95_ms:.2f}x,"
                        f" peak RSS {ra / rb:.2f}x"
                    )
        scores = {
            side.name: quality(sampled, {label: side.url(label, "{i}") for label in SIZES})  # type: ignore[arg-type]
            for side in sides
        }
        for label in SIZES:
            parts = []
            for side in sides:
                mean = results[(side.name, "keep-alive", 8)].mean_bytes(label)
                parts.append(f"{side.name} {mean:8.0f} B {scores[side.name][label]:.2f} dB")
            base = results[(ours.name, "keep-alive", 8)].mean_bytes(label)
            vs = "  ".join(
                f"{100 * (base / results[(p.name, 'keep-alive', 8)].mean_bytes(label) - 1):+.1f}%"
                f" vs {p.name}"
                for p in sides[1:]
            )
            print(f"  bytes {label:13s} " + "  ".join(parts) + f"  ({vs})")
    finally:
        for side in sides:  # every one, even when stopping another failed
            try:
                stop_group(side.process)
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"  could not stop {side.name}: {exc}", file=sys.stderr)
                side.process.kill()


if __name__ == "__main__":
    main()
