"""The uploads half of ``scale.py``: a burst drained with many earlier uploads known.

Not run on its own; ``scale.py --uploads-known 0,10000,100000`` calls it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from upload_burst import make_images  # noqa: E402

from image_assets.catalog.duckdb_catalog import sync_image_metadata  # noqa: E402
from image_assets.catalog.tags_table import save_upload_tag_row, sync_image_tags  # noqa: E402
from image_assets.layout import upload_audit_key  # noqa: E402
from image_assets.records import AuditRow, TagRow  # noqa: E402
from image_assets.storage import LocalBlobStore  # noqa: E402

UPLOAD_ASSET = "upload_renditions"
# what the asset page's partitions view reads: every key, the status ranges, the counts
ASSET_PAGE = """
query($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      partitionKeysByDimension { name partitionKeys }
      partitionStats { numMaterialized numMaterializing numFailed numPartitions }
      assetPartitionStatuses {
        __typename
        ... on DefaultPartitionStatuses { materializedPartitions failedPartitions }
      }
      assetMaterializations(limit: 1) { timestamp partition }
    }
  }
}
"""
TICKS = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 400) { timestamp endTimestamp status } } }
  }
}
"""
RUNS = """
{ runsOrError(limit: 1000) { ... on Runs { results {
    runId jobName status creationTime startTime endTime } } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register_known(home: Path, data: Path, count: int) -> float:
    """``count`` earlier uploads: dynamic partitions, audit rows, tag rows, and the catalog
    tables built over them. Returns the seconds it took."""
    from dagster import DagsterInstance

    started = time.time()
    ids = ["u" + hashlib.sha256(f"earlier-{i}".encode()).hexdigest()[:24] for i in range(count)]
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)  # the instance's dagster.yaml reads it
    try:
        with DagsterInstance.get() as instance:
            for start in range(0, count, 10_000):
                instance.add_dynamic_partitions("uploads", ids[start : start + 10_000])
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before
    raw = LocalBlobStore(data / "raw")
    then = started - 86_400
    for n, upload_id in enumerate(ids):
        row = AuditRow(
            key=upload_id,
            source="upload",
            original_name=f"earlier {n}.jpg",
            sha256=hashlib.sha256(upload_id.encode()).hexdigest(),
            bytes=2_000_000,
            width=3000,
            height=2000,
            format="JPEG",
            renditions=8,
            status="processed",
            received_at=then,
            processed_at=then,
        )
        raw.put(upload_audit_key(upload_id), row.model_dump_json().encode())
        phash = hashlib.sha256(b"p" + upload_id.encode()).hexdigest()[:16]
        dhash = hashlib.sha256(b"d" + upload_id.encode()).hexdigest()[:16]
        save_upload_tag_row(
            raw,
            TagRow(
                key=upload_id,
                source="upload",
                status="ok",
                phash=phash,
                dhash=dhash,
                average_colour="#808080",
            ),
        )
    database = data / "catalog.duckdb"
    sync_image_metadata(database, raw)
    sync_image_tags(database, raw)
    return time.time() - started


class Graphql:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.client = httpx.Client(timeout=120)

    def __call__(self, query: str, **variables: object) -> dict:
        answer = self.client.post(self.url, json={"query": query, "variables": variables})
        answer.raise_for_status()
        body = answer.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def location(self) -> str:
        entries = self(
            "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        )["workspaceOrError"]["locationEntries"]
        loaded = [e["name"] for e in entries if e["loadStatus"] == "LOADED"]
        return loaded[0] if loaded else ""


def _wait(check, timeout: float, what: str, log: Path):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, RuntimeError, KeyError, IndexError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}; see {log}")


def upload_scale(known: int, burst: int, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"scale-uploads-{known}-"))
    home, data = work / "home", work / "data"
    home.mkdir()
    (data / "incoming").mkdir(parents=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    images = make_images(work / "staging", burst)
    registered_s = register_known(home, data, known)
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMAGE_ASSETS_DATA_DIR": str(data),
        "IMAGE_ASSETS_CATALOG_DB": str(data / "catalog.duckdb"),
        "IMAGE_ASSETS_UPLOAD_SENSOR": "listing",
    }
    log = work / "dagster.log"
    dev = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster")),
            *("dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")),
        ],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        start_new_session=True,
    )
    gql = Graphql(port)
    try:
        location = _wait(gql.location, 240, "the code location", log)
        selector = {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "sensorName": "uploads_listing_sensor",
        }

        def ticks() -> list[dict]:
            state = gql(TICKS, selector=selector)["sensorOrError"]["sensorState"]
            return state["ticks"]

        _wait(ticks, 240, "the sensor's first tick", log)
        page_s = []
        for _ in range(3):
            began = time.perf_counter()
            node = gql(ASSET_PAGE, key={"path": [UPLOAD_ASSET]})["assetNodeOrError"]
            page_s.append(time.perf_counter() - began)
        partitions = node["partitionStats"]["numPartitions"]

        dropped: dict[str, float] = {}
        drop_started = time.time()
        for path in images:  # an atomic appearance each, settled already
            hidden = data / "incoming" / f".{path.name}"
            shutil.copyfile(path, hidden)
            os.utime(hidden, (drop_started - 60, drop_started - 60))
            os.rename(hidden, data / "incoming" / path.name)
            dropped[path.name] = time.time()
        audit = data / "raw" / "audit" / "uploads"
        done: dict[str, float] = {}
        looked_at: set[str] = set()  # audit files of earlier uploads and of finished ones
        deadline = time.time() + timeout
        while len(done) < burst and time.time() < deadline:
            time.sleep(1.0)  # outcome times come from the rows, not from this loop
            if not audit.is_dir():
                continue
            with os.scandir(audit) as entries:
                fresh = [e.path for e in entries if e.name not in looked_at]
            for row_path in fresh:
                try:
                    row = json.loads(Path(row_path).read_text())
                except (OSError, ValueError):
                    continue  # being replaced
                name = row.get("original_name")
                if name not in dropped:
                    looked_at.add(Path(row_path).name)
                elif row["status"] in ("processed", "rejected"):
                    done[name] = row["processed_at"]
                    looked_at.add(Path(row_path).name)
        if len(done) < burst:
            raise SystemExit(f"timed out: {len(done)}/{burst} uploads rendered; see {log}")
        last_render = max(done.values())

        def catalog_caught_up() -> float | None:
            found = gql(
                "query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on "
                "AssetNode { assetMaterializations(limit: 1) { timestamp } } } }",
                key={"path": ["image_metadata"]},
            )["assetNodeOrError"]["assetMaterializations"]
            stamp = float(found[0]["timestamp"]) / 1000 if found else 0.0
            return stamp if stamp > last_render else None

        caught_up = _wait(catalog_caught_up, 600, "image_metadata after the burst", log)
        burst_ticks = [
            t
            for t in ticks()
            if t["endTimestamp"] and drop_started - 10 <= t["timestamp"] <= last_render
        ]
        tick_s = sorted(t["endTimestamp"] - t["timestamp"] for t in burst_ticks)
        runs = gql(RUNS)["runsOrError"]["results"]
        upload_runs = [r for r in runs if r["jobName"] == "upload_job" and r["startTime"]]
        launch_s = sorted(r["startTime"] - r["creationTime"] for r in upload_runs)
        latencies = sorted(done[n] - dropped[n] for n in done)
        drain = last_render - min(dropped.values())
        return {
            "known": known,
            "partitions": partitions,
            "registered_s": registered_s,
            "burst": burst,
            "drain_s": drain,
            "per_s": burst / drain,
            "first_s": min(latencies),
            "p50_s": statistics.median(latencies),
            "p95_s": statistics.quantiles(latencies, n=20, method="inclusive")[18],
            "ticks": len(tick_s),
            "tick_p50_s": statistics.median(tick_s) if tick_s else 0.0,
            "tick_max_s": tick_s[-1] if tick_s else 0.0,
            "runs": len(upload_runs),
            "launch_p50_s": statistics.median(launch_s) if launch_s else 0.0,
            "launch_max_s": launch_s[-1] if launch_s else 0.0,
            "catalog_after_s": caught_up - last_render,
            "page_s": statistics.median(page_s),
        }
    finally:
        gql.client.close()
        os.killpg(dev.pid, 15)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, 9)
        shutil.rmtree(work, ignore_errors=True)


def print_upload_table(cases: list[dict]) -> None:
    base = cases[0]
    print()
    print(
        "| earlier uploads | partitions | drain | uploads/s | first outcome | p50 / p95 drop to"
        " rendered | sensor tick p50 / max | run launch p50 / max | image_metadata after"
        " the last | asset page |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        print(
            f"| {c['known']:,} | {c['partitions']:,} | {c['drain_s']:.1f} s | {c['per_s']:.2f} | "
            f"{c['first_s']:.1f} s | {c['p50_s']:.1f} / {c['p95_s']:.1f} s | "
            f"{c['tick_p50_s']:.2f} / {c['tick_max_s']:.2f} s ({c['ticks']}) | "
            f"{c['launch_p50_s']:.1f} / {c['launch_max_s']:.1f} s ({c['runs']}) | "
            f"{c['catalog_after_s']:.1f} s | {c['page_s']:.2f} s |"
        )
    print()
    for c in cases:
        print(
            f"  {c['known']:,} earlier uploads (registered in {c['registered_s']:.0f} s): drain "
            f"{c['drain_s'] / base['drain_s']:.2f}x the drain with {base['known']:,}, asset page "
            f"{c['page_s'] / base['page_s']:.2f}x"
        )
