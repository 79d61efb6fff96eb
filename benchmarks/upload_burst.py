"""Upload burst: N JPEGs (up to 12 MP) dropped at once into incoming, drained by the real
listing sensor and upload runs under `dagster-daemon`, on a local instance.

Reports the drain time (first drop to last upload rendered), uploads per second, and
p50/p95 of the time from drop to rendered. The peer, in the same run: the same
platform with one upload per run (``IMAGE_ASSETS_UPLOAD_BATCH_SIZE=1``, what the
pipeline did before batching) on a smaller burst; the ratio of their throughputs is
printed.

    .venv/bin/python benchmarks/upload_burst.py --count 200 --peer-count 30
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from image_assets.demo.images import ImageSpec, render_image  # noqa: E402

# upright sizes cycling from 0.5 to 12 megapixels
SIZES = [(800, 600), (1600, 1200), (2048, 1536), (3000, 2000), (3264, 2448), (4000, 3000)]


def make_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = SIZES[index % len(SIZES)]
        path = folder / f"burst-{index:04d}.jpg"
        path.write_bytes(render_image(ImageSpec(f"burst-{index}", width, height)))
        paths.append(path)
    return paths


def run_burst(images: list[Path], batch_size: int, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="upload-burst-"))
    home, data = work / "home", work / "data"
    home.mkdir()
    (data / "incoming").mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_UPLOAD_SENSOR": "listing",
        "IMAGE_ASSETS_UPLOAD_BATCH_SIZE": str(batch_size),
    }
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "daemon.log").open("wb"),
    )
    try:
        time.sleep(20)  # the daemon loads the code location and starts its sensor loop
        dropped: dict[str, float] = {}
        started = time.time()
        for path in images:  # an atomic appearance each, all within a second or so
            target = data / "incoming" / path.name
            shutil.copyfile(path, data / "incoming" / f".{path.name}")
            os.utime(data / "incoming" / f".{path.name}", (started - 60, started - 60))
            os.rename(data / "incoming" / f".{path.name}", target)
            dropped[path.name] = time.time()
        audit = data / "raw" / "audit" / "uploads"
        done: dict[str, float] = {}
        deadline = time.time() + timeout
        while len(done) < len(images) and time.time() < deadline:
            time.sleep(0.5)
            for row_path in audit.glob("*.json") if audit.is_dir() else []:
                try:
                    row = json.loads(row_path.read_text())
                except (OSError, ValueError):
                    continue  # being replaced
                if row["status"] in ("processed", "rejected") and row["original_name"] in dropped:
                    done.setdefault(row["original_name"], row["processed_at"])
        if len(done) < len(images):
            raise SystemExit(
                f"timed out: {len(done)}/{len(images)} uploads rendered; see {work}/daemon.log"
            )
        latencies = sorted(done[name] - dropped[name] for name in done)
        drain = max(done.values()) - min(dropped.values())
        return {
            "uploads": len(images),
            "batch_size": batch_size,
            "drain_s": drain,
            "per_s": len(images) / drain,
            "p50_s": statistics.median(latencies),
            "p95_s": (
                statistics.quantiles(latencies, n=20, method="inclusive")[18]
                if len(latencies) > 1
                else latencies[0]
            ),
        }
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--peer-count", type=int, default=30, help="0: no peer run")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    staging = Path(tempfile.mkdtemp(prefix="upload-burst-images-"))
    try:
        images = make_images(staging, max(args.count, args.peer_count))
        megapixels = sum(w * h for w, h in (SIZES[i % len(SIZES)] for i in range(args.count)))
        print(
            f"{args.count} JPEGs, {megapixels / args.count / 1e6:.1f} MP on average "
            f"(0.5 to 12 MP), dropped at once; listing sensor + dagster-daemon, local instance",
            flush=True,
        )
        ours = run_burst(images[: args.count], args.batch_size, args.timeout)
        line = "  {label}: {uploads} uploads in {drain_s:.1f} s = {per_s:.2f}/s; drop to rendered p50 {p50_s:.1f} s, p95 {p95_s:.1f} s"
        print(line.format(label=f"batches of {args.batch_size}", **ours), flush=True)
        if args.peer_count:
            peer = run_burst(images[: args.peer_count], 1, args.timeout)
            print(line.format(label="one upload per run", **peer), flush=True)
            print(f"  throughput ratio: {ours['per_s'] / peer['per_s']:.1f}x")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
