"""CDN housekeeping end to end, in a real Dagster instance, against the strict
Cloudinary fake: a vendor's catalogue shrinks from 24 products to 12; the images
that left wait out the grace, a scraper breakage in between deletes nothing, and
afterwards the CDN holds exactly the live set while the CSV stays as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from image_assets.catalog.kits_csv import parse_csv
from image_assets_tests.fake_cloudinary import FakeCloudinary
from image_assets_tests.storefronts import storefront_server

REPO = Path(__file__).resolve().parents[1]

_RUN = """
import json, sys
from dagster import DagsterInstance, materialize
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks
from image_assets.defs.housekeeping.assets import cdn_housekeeping, renditions_housekeeping

what, partition, data_dir = sys.argv[1], sys.argv[2], sys.argv[3]
selection = {
    "vendor": [*vendor_assets, *checks],
    "housekeeping": [cdn_housekeeping],
    "renditions": [renditions_housekeeping],
}[what]
config = {}
if what == "housekeeping":
    config = {"ops": {"cdn_housekeeping": {"config": {"max_share": float(sys.argv[4])}}}}
with DagsterInstance.get() as instance:
    run = materialize(
        selection,
        partition_key=partition if what != "renditions" else None,
        resources=build_resources(data_dir),
        instance=instance,
        run_config=config,
        raise_on_error=False,
    )
    metadata = {}
    for event in run.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        metadata[mat.asset_key.path[-1]] = {
            k: v.value for k, v in mat.metadata.items() if isinstance(v.value, (int, float, str))
        }
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in run.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
print(json.dumps({"success": run.success, "metadata": metadata, "checks": checks}))
"""


class Shop:
    """A Shopify-style shop whose catalogue size the test sets."""

    def __init__(self, shops, count: int = 24):
        self.shops, self.count = shops, count
        for i in range(24):
            shops.image(f"/shopify/cdn/files/kit{i:02d}.jpg")

        def products_json(query=None):
            page = int((query or {}).get("page", ["1"])[0])
            items = [
                {
                    "id": 900 + i,
                    "title": f"Kit {i}",
                    "handle": f"kit-{i}",
                    "variants": [{"id": i, "sku": f"KIT-{i:02d}", "price": "10.00"}],
                    "images": [
                        {
                            "id": i,
                            "position": 1,
                            "src": shops.url(f"/shopify/cdn/files/kit{i:02d}.jpg"),
                        }
                    ],
                }
                for i in range(self.count)
            ]
            body = json.dumps({"products": items if page == 1 else []}).encode()
            return 200, {"Content-Type": "application/json"}, body

        shops.routes["/shopify/products.json"] = products_json


@pytest.fixture
def world(tmp_path):
    with storefront_server() as shops:
        cloudinary = FakeCloudinary().start()
        registry = tmp_path / "vendors.yaml"
        registry.write_text(
            "vendors:\n"
            "  - key: rockets\n"
            "    name: Rocket Shop\n"
            "    currency: USD\n"
            "    retention_days: 30\n"
            "    allow_private_networks: [127.0.0.0/8]\n"
            f'    catalog: {{kind: shopify, base_url: "{shops.base}/shopify"}}\n'
        )
        home = tmp_path / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {
            **os.environ,
            "IMAGE_ASSETS_REGISTRY": str(registry),
            "DAGSTER_HOME": str(home),
            "IMAGE_ASSETS_PROFILE": "local",
            "IMAGE_ASSETS_DATA_DIR": str(tmp_path / "data"),
            "CLOUDINARY_URL": cloudinary.cloudinary_url,
            "CLOUDINARY_UPLOAD_PREFIX": cloudinary.url,
        }
        try:
            yield Shop(shops), cloudinary, tmp_path / "data", env
        finally:
            cloudinary.stop()


def _run(env, what: str, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _RUN, what, "rockets", env["IMAGE_ASSETS_DATA_DIR"], *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _age_ledger(data: Path, days: int) -> None:
    """Time passing, for the ledger: every retirement moved ``days`` into the past."""
    for ledger in (data / "images" / "cdn_ledger").rglob("rockets.json"):
        entries = json.loads(ledger.read_text())
        for entry in entries.values():
            if entry.get("retired_on"):
                since = date.fromisoformat(entry["retired_on"]) - timedelta(days=days)
                entry["retired_on"] = since.isoformat()
        ledger.write_text(json.dumps(entries))


def _stored(cloudinary: FakeCloudinary) -> tuple[set[str], int]:
    with cloudinary.lock:
        return set(cloudinary.resources), sum(r["bytes"] for r in cloudinary.resources.values())


def test_a_shrunken_catalogue_leaves_the_cdn_after_the_grace_and_never_during_a_breakage(world):
    shop, cloudinary, data, env = world
    first = _run(env, "vendor")
    assert first["success"] and first["checks"]["scraper_not_broken"]
    all_ids, all_bytes = _stored(cloudinary)
    assert len(all_ids) == 24

    shop.count = 12
    assert _run(env, "vendor")["success"]
    csv_path = data / "raw" / "kits" / "rockets_kits.csv"
    live_csv = csv_path.read_bytes()
    live = {json.loads(r["images"])[0]["public_id"] for r in parse_csv(live_csv)}
    assert len(live) == 12 and _stored(cloudinary)[0] == all_ids  # nothing deleted by a run

    waiting = _run(env, "housekeeping", "1.0")["metadata"]["cdn_housekeeping"]
    assert waiting["assets_deleted"] == 0 and waiting["retired_waiting"] == 12
    assert _stored(cloudinary)[0] == all_ids

    # the scraper breaks (2 products of 12: past max_count_drop) while the grace runs out
    shop.count = 2
    broken = _run(env, "vendor")
    assert broken["checks"]["scraper_not_broken"] is False
    assert csv_path.read_bytes() == live_csv  # the blocking check kept the CSV
    _age_ledger(data, 31)
    skipped = _run(env, "housekeeping", "1.0")["metadata"]["cdn_housekeeping"]
    assert skipped["assets_deleted"] == 0 and "scraper_not_broken" in skipped["skipped"]
    assert _stored(cloudinary)[0] == all_ids

    # the shop is read again: now the 12 that left go, at the share the run confirmed
    shop.count = 12
    assert _run(env, "vendor")["checks"]["scraper_not_broken"] is True
    capped = _run(env, "housekeeping", "0.1")["metadata"]["cdn_housekeeping"]
    assert capped["assets_deleted"] == 2 and capped["due_left"] == 10  # 10% of 24 held
    done = _run(env, "housekeeping", "1.0")["metadata"]["cdn_housekeeping"]
    assert done["assets_deleted"] == 10 and done["due_left"] == 0
    held, held_bytes = _stored(cloudinary)
    assert held == live
    assert held_bytes == sum(
        json.loads(r["images"])[0]["bytes"] for r in parse_csv(csv_path.read_bytes())
    )
    assert done["cloudinary_storage_bytes"] == held_bytes < all_bytes
    assert csv_path.read_bytes() == live_csv
    assert sum(cloudinary.invalidations.values()) >= 12  # every deletion purged the CDN
    again = _run(env, "housekeeping", "1.0")["metadata"]["cdn_housekeeping"]
    assert again["assets_deleted"] == 0 and _stored(cloudinary)[0] == live  # once only
    print(f"storage before {all_bytes} bytes, after {held_bytes} bytes")


def test_the_dry_run_lists_what_would_go_and_deletes_nothing(world):
    shop, cloudinary, data, env = world
    assert _run(env, "vendor")["success"]
    shop.count = 20
    assert _run(env, "vendor")["success"]
    assert _run(env, "housekeeping", "1.0")["metadata"]["cdn_housekeeping"]["retired_waiting"] == 4
    _age_ledger(data, 40)
    before = _stored(cloudinary)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "image_assets.cli",
            "housekeeping",
            "--vendor",
            "rockets",
            "--dry-run",
            "--max-share",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert sorted(public_id for _, public_id, _ in lines) == [
        f"kits/rockets/kit-{i}" for i in range(20, 24)
    ]
    assert all(storage == "cloudinary" and int(size) > 0 for storage, _, size in lines)
    total = sum(int(size) for _, _, size in lines)
    assert f"rockets: 4 assets ({total} bytes) would be deleted" in done.stderr
    assert _stored(cloudinary) == before


def test_renditions_of_an_old_config_go_once_every_vendor_re_rendered(world, tmp_path):
    """Item: a renditions config change leaves the old outputs in the private store;
    they are retired once every partition has re-rendered, and deleted after the grace,
    while the current ones stay."""
    shop, _cloudinary, data, env = world
    shop.count = 4
    assert _run(env, "vendor")["success"]
    bundled = (REPO / "image_assets" / "renditions.yaml").read_text()
    changed = tmp_path / "renditions.yaml"
    changed.write_text(bundled.replace("width: 400\n", "width: 420\n", 1))
    assert changed.read_text() != bundled
    env = {**env, "IMAGE_ASSETS_RENDITIONS": str(changed)}

    def prefixes() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for path in (data / "images" / "renditions").glob("*/*/*/*"):  # files only
            if path.is_file():
                found.setdefault(path.parent.name, set()).add(path.parent.parent.name)
        return found

    before = prefixes()
    assert len(before) == 1
    (old,) = before
    # the config changed but rockets has not re-rendered: nothing may go
    blocked = _run(env, "renditions")["metadata"]["renditions_housekeeping"]
    assert "rockets" in blocked["skipped"] and prefixes() == before
    assert _run(env, "vendor")["success"]  # re-rendered under the new config
    now = prefixes()
    (new,) = set(now) - {old}
    waiting = _run(env, "renditions")["metadata"]["renditions_housekeeping"]
    assert waiting["stale_prefixes"] == 4 and waiting["retired_waiting"] == 4
    assert waiting["prefixes_deleted"] == 0 and prefixes() == now
    state = data / "raw" / "state" / "retired_renditions.json"
    aged = {
        prefix: (date.fromisoformat(day) - timedelta(days=31)).isoformat()
        for prefix, day in json.loads(state.read_text()).items()
    }
    state.write_text(json.dumps(aged))
    done = _run(env, "renditions")["metadata"]["renditions_housekeeping"]
    assert done["prefixes_deleted"] == 4 and done["bytes_freed"] > 0
    assert set(prefixes()) == {new} and prefixes()[new] == now[new]
    again = _run(env, "renditions")["metadata"]["renditions_housekeeping"]
    assert again["prefixes_deleted"] == 0 and again["stale_prefixes"] == 0
