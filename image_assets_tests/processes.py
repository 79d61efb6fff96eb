"""Helpers for tests that start real servers: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Poll ``url`` until it answers; fail early if ``process`` exits first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"the server exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{url} did not answer within {seconds} s"
        time.sleep(0.2)


# One vendor partition materialized in a real Dagster instance (DAGSTER_HOME), in a
# process of its own: argv partition, data dir; prints success, metadata, checks, logs.
VENDOR_RUN = """
import json, sys
from dagster import DagsterInstance, materialize
from image_assets.defs.profiles import build_resources
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.defs.vendors.checks import checks

partition, data_dir = sys.argv[1], sys.argv[2]
with DagsterInstance.get() as instance:
    run = materialize(
        [*vendor_assets, *checks],
        partition_key=partition,
        resources=build_resources(data_dir),
        instance=instance,
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
    logs = [e.message for e in instance.all_logs(run.run_id) if e.message]
print(json.dumps({"success": run.success, "metadata": metadata, "checks": checks, "logs": logs}))
"""
