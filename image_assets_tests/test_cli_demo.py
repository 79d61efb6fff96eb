"""`make demo` end to end, as the README says to run it: a real process, instance and HTTP;
then the README's query of the catalog, as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx

from image_assets.catalog.kits_csv import parse_csv
from image_assets_tests.processes import free_port, wait_until_up

REPO = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, port: int, delivery: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "IMAGE_ASSETS_DATA_DIR": str(tmp_path / "work" / ".data"),
        "DEMO_PORT": str(port),
        "DELIVERY_PORT": str(delivery),
    }
    env.pop("IMAGE_ASSETS_DEMO_URL", None)
    return subprocess.run(
        ["make", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _summary(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("manufacturer"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells
    return rows


def test_make_demo_twice_second_run_is_free(tmp_path):
    port, delivery = free_port(), free_port()  # the same URLs both times, as with `make demo`
    first = _demo(tmp_path, port, delivery)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rows = _summary(first.stdout)
    assert set(rows) == {"estes", "loc", "rocketarium"}
    for cells in rows.values():
        assert cells[1] == "ok" and int(cells[5]) > 0 and int(cells[7]) > 0
    assert (tmp_path / "home" / "dagster.yaml").is_file()  # the project's instance config
    assert (tmp_path / "home" / "history").is_dir()  # runs recorded in the real instance

    second = _demo(tmp_path, port, delivery)
    assert second.returncode == 0, second.stderr[-3000:]
    for name, cells in _summary(second.stdout).items():
        assert cells[5] == "0", f"{name} downloaded again: {cells}"
        assert cells[7] == "0", f"{name} uploaded again: {cells}"
    with duckdb.connect(str(tmp_path / "work" / ".data" / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from clean_kits").fetchone()[0] == 24
    # the README's query, as written, from a folder whose .data is the demo's
    (tmp_path / "work" / ".venv").symlink_to(REPO / ".venv")
    readme = (REPO / "README.md").read_text()
    queries = [line for line in readme.splitlines() if line.startswith(".venv/bin/python -c")]
    assert len(queries) == 2
    for query in queries:
        shown = subprocess.run(
            ["bash", "-c", query], cwd=tmp_path / "work", capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        assert all(vendor in shown.stdout for vendor in ("estes", "loc", "rocketarium"))
        if "image_tags" in query:  # every picture's colours, per product
            assert "average_colour" in shown.stdout and re.search(r"#[0-9a-f]{6}", shown.stdout)
            with duckdb.connect(
                str(tmp_path / "work" / ".data" / "catalog.duckdb"), read_only=True
            ) as con:
                pictured = [
                    pid
                    for (pid,) in con.execute(
                        "select product_id from clean_kits where image_count > 0"
                    ).fetchall()
                ]
            assert pictured and all(f" {pid} " in shown.stdout for pid in pictured)
        else:
            assert "imageSrc" in shown.stdout

    # every link of the CSVs opens an image once the service runs (as `make ui` starts it)
    env = {**os.environ, "IMAGE_ASSETS_DATA_DIR": str(tmp_path / "work" / ".data")}
    service = subprocess.Popen(
        [sys.executable, "-m", "image_assets.cli", "serve", "--port", str(delivery)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{delivery}"
        wait_until_up(base + "/healthz", service, 30)
        links = []
        for csv in (tmp_path / "work" / ".data" / "raw" / "kits").glob("*_kits.csv"):
            for row in parse_csv(csv.read_bytes()):
                for image in json.loads(row["images"]):
                    links += [image["secure_url"], *image["renditions"].values()]
        assert links and all(link.startswith(base + "/image/upload/") for link in links)
        for link in links:
            answer = httpx.get(link, headers={"Accept": "image/webp"})
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(
                "image/"
            ), link
    finally:
        service.terminate()
        service.wait(timeout=20)
