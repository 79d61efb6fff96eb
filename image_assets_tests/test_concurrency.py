"""Many runs at once, as production runs them (one ECS task or pod each), with real
processes on one machine: nothing lost, nothing done twice.

Uploads: S3 + SQS on the moto server (the aws profile throughout), batches run as
separate processes at the same time, one batch started twice, an SQS message
redelivered while its run is still working, the same object notified twice, and a
run killed with SIGKILL half way through its batch. Every file must end exactly once
in ``image_metadata`` (rendered, or rejected with its reason), no upload's renditions
may be made twice (the images bucket is versioned: a second render would leave a
second version of its index), none may be left unrecorded.

Vendors: two runs of one manufacturer started at once; the second waits for the
first at each writing step, and the CSV and the CDN ledger come out as one run
alone makes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import duckdb
import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from image_assets.defs.catalog.assets import image_metadata
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads import sensors as upload_sensors
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.demo.images import ImageSpec, render_image
from image_assets.layout import LEASES_FOLDER, UPLOAD_AUDIT_PREFIX, renditions_index_key
from image_assets.storage import LocalBlobStore
from image_assets.storage.leases import Leases
from image_assets.storage.s3 import S3BlobStore
from image_assets.uploads.lifecycle import upload_lease_name
from image_assets_tests.processes import VENDOR_RUN

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
GOOD, CORRUPT, BATCH = 22, 2, 6
LEASE_SECONDS = 3

_RUN = """
import json, sys
from dagster import DagsterInstance, materialize
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads.assets import assets

request = json.loads(sys.argv[1])
with DagsterInstance.get() as instance:
    if request.get("partition_key"):
        run = materialize(assets, partition_key=request["partition_key"],
                          resources=build_resources(), instance=instance, raise_on_error=False)
    else:
        run = materialize(assets, tags=request["tags"], resources=build_resources(),
                          instance=instance, raise_on_error=False)
print(json.dumps({"success": run.success}))
"""


@pytest.fixture
def aws_uploads(aws_env, tmp_path, monkeypatch):
    """Raw, images and uploads buckets (raw and images versioned), S3 events on SQS, the
    aws profile's environment for this process and the run processes."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    names = {role: f"{role}-{uuid.uuid4().hex[:8]}" for role in ("raw", "images", "uploads", "cdn")}
    for bucket in names.values():
        s3.create_bucket(Bucket=bucket)
    for role in ("raw", "images"):
        s3.put_bucket_versioning(Bucket=names[role], VersioningConfiguration={"Status": "Enabled"})
    queue = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=names["uploads"],
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                }
            ]
        },
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "IMAGE_ASSETS_PROFILE": "aws",
        "IMAGE_ASSETS_RAW_BUCKET": names["raw"],
        "IMAGE_ASSETS_IMAGES_BUCKET": names["images"],
        "IMAGE_ASSETS_CDN_BUCKET": names["cdn"],
        "IMAGE_ASSETS_UPLOADS_BUCKET": names["uploads"],
        "IMAGE_ASSETS_UPLOADS_QUEUE_URL": queue,
        "IMAGE_ASSETS_UPLOAD_LEASE_SECONDS": str(LEASE_SECONDS),
        "IMAGE_ASSETS_UPLOAD_BATCH_SIZE": str(BATCH),
        "IMAGE_ASSETS_CATALOG_DB": str(tmp_path / "catalog.duckdb"),
        "DAGSTER_HOME": str(home),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLOUDINARY_URL", raising=False)
    return {"buckets": names, "queue": queue, "tmp": tmp_path}


def _start_run(request: dict, log: Path) -> subprocess.Popen:
    """One run in a process (and session) of its own, as a pod is: a SIGKILL to its
    group takes its worker pool down with it."""
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, json.dumps(request)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        text=True,
        start_new_session=True,
    )


def _request(run_request) -> dict:
    if RANGE[0] in run_request.tags:
        return {"tags": dict(run_request.tags)}
    return {"partition_key": run_request.partition_key}


def _tick(instance, resources, cursor):
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"uploads": resources["uploads"], "storage": resources["storage"]},
    ) as context:
        result = upload_sensors.uploads_queue_sensor(context)
    for added in getattr(result, "dynamic_partitions_requests", None) or []:
        instance.add_dynamic_partitions("uploads", list(added.partition_keys))
    return result


def _audit_rows(raw_bucket: str) -> list[dict]:
    s3 = boto3.client("s3")
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=raw_bucket, Prefix=UPLOAD_AUDIT_PREFIX + "/"
    ):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=raw_bucket, Key=item["Key"])["Body"].read()
            rows.append(json.loads(body))
    return rows


def _finished(rows: list[dict], ids: set[str]) -> set[str]:
    return {r["key"] for r in rows if r["key"] in ids and r["status"] in ("processed", "rejected")}


def _s3_event(bucket: str, key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
                }
            ]
        }
    )


def test_concurrent_upload_runs_lose_nothing_and_render_nothing_twice(aws_uploads, monkeypatch):
    buckets, queue = aws_uploads["buckets"], aws_uploads["queue"]
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    names = []
    for i in range(GOOD):  # big enough that a batch takes seconds: time to kill one
        name = f"photo-{i:02d}.jpg"
        s3.put_object(
            Bucket=buckets["uploads"],
            Key=f"incoming/{name}",
            Body=render_image(ImageSpec(name, 1800, 1350)),
        )
        names.append(name)
    for i in range(CORRUPT):
        name = f"broken-{i}.jpg"
        s3.put_object(
            Bucket=buckets["uploads"], Key=f"incoming/{name}", Body=b"\xff\xd8 not a jpeg"
        )
        names.append(name)
    # the same object notified twice more (S3 delivers at least once)
    for _ in range(2):
        sqs.send_message(
            QueueUrl=queue, MessageBody=_s3_event(buckets["uploads"], "incoming/photo-03.jpg")
        )

    resources = build_resources(str(aws_uploads["tmp"] / "data"))
    uploads: UploadsResource = resources["uploads"]
    resources["uploads"] = uploads.model_copy(update={"queue_visibility_seconds": 2})
    logs = aws_uploads["tmp"] / "logs"
    logs.mkdir()
    with DagsterInstance.get() as instance:
        requests, cursor, first_cursor = [], None, None
        for _ in range(10):  # SQS answers 10 messages at most per receive
            result = _tick(instance, resources, cursor)
            first_cursor = first_cursor if first_cursor is not None else result.cursor
            requests += list(getattr(result, "run_requests", None) or [])
            cursor = result.cursor
            ids = set(instance.get_dynamic_partitions("uploads"))
            if len(ids) == len(names):
                break
        assert len(ids) == len(names)  # each object claimed once: the duplicates found it gone
        assert len(requests) >= 4

        # every batch at once, and the last one a second time (a re-request of the same
        # uploads, as a redelivered message or a run retry makes)
        procs = [_start_run(_request(r), logs / f"run-{n}.log") for n, r in enumerate(requests)]
        procs.append(_start_run(_request(requests[-1]), logs / "run-again.log"))

        # a tick whose cursor was lost: its messages come back after the visibility
        # timeout, while the runs work, and find their objects claimed
        time.sleep(2.5)
        redelivered = _tick(instance, resources, first_cursor)
        assert not getattr(redelivered, "dynamic_partitions_requests", None)
        assert set(instance.get_dynamic_partitions("uploads")) == ids

        # SIGKILL one run half way through its batch (some of its uploads recorded)
        victim = 0  # not the batch started twice: only the sensor's retry may finish it
        assert RANGE[0] in requests[victim].tags
        keys = instance.get_dynamic_partitions("uploads")
        start, end = (requests[victim].tags[t] for t in RANGE)
        victim_ids = set(keys[keys.index(start) : keys.index(end) + 1])
        deadline = time.time() + 240
        while time.time() < deadline:
            done = _finished(_audit_rows(buckets["raw"]), victim_ids)
            if done or procs[victim].poll() is not None:
                break
            time.sleep(0.2)
        assert procs[victim].poll() is None, "the batch ended before it could be killed"
        os.killpg(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(timeout=30)
        killed_done = _finished(_audit_rows(buckets["raw"]), victim_ids)
        assert killed_done < victim_ids  # killed half way: some recorded, not all

        for n, proc in enumerate(procs):
            if n != victim:
                out, _ = proc.communicate(timeout=600)
                assert json.loads(out.strip().splitlines()[-1])["success"], (
                    n,
                    (logs / f"run-{n}.log").read_text()[-3000:],
                )

        # the killed run's leases expire; the sensor tries its unfinished uploads again
        time.sleep(LEASE_SECONDS + 0.5)
        monkeypatch.setattr(upload_sensors, "RETRY_AFTER", 0)
        retry = _tick(instance, resources, cursor)
        retried = [r.partition_key for r in retry.run_requests]
        assert set(retried) == victim_ids - killed_done
        for n, request in enumerate(retry.run_requests):
            proc = _start_run(_request(request), logs / f"retry-{n}.log")
            out, _ = proc.communicate(timeout=600)
            assert json.loads(out.strip().splitlines()[-1])["success"]

        catalog = materialize([image_metadata], resources=resources, instance=instance)
        assert catalog.success

    rows = _audit_rows(buckets["raw"])
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["original_name"], []).append(row)
    assert sorted(by_name) == sorted(names)  # none unrecorded
    assert all(len(found) == 1 for found in by_name.values())  # none recorded twice
    for name, (row,) in by_name.items():
        if name.startswith("broken"):
            assert row["status"] == "rejected" and row["reason"], row
        else:
            assert row["status"] == "processed" and row["renditions"] > 0, row

    # none rendered twice: one version of each upload's renditions index
    versions: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=buckets["images"]):
        for version in page.get("Versions", []):
            if version["Key"].endswith(renditions_index_key("x").removeprefix("x")):
                versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    assert len(versions) == GOOD
    assert set(versions.values()) == {1}, versions

    # nothing left behind: incoming and claimed empty, no lease held or kept
    for prefix in ("incoming/", "claimed/"):
        assert s3.list_objects_v2(Bucket=buckets["uploads"], Prefix=prefix)["KeyCount"] == 0
    raw = S3BlobStore(lambda: boto3.client("s3"), buckets["raw"])
    leases = Leases(raw, LEASE_SECONDS)
    assert all(leases.holder(upload_lease_name(r["key"])) is None for r in rows)
    assert list(raw.list(LEASES_FOLDER)) == []

    with duckdb.connect(os.environ["IMAGE_ASSETS_CATALOG_DB"], read_only=True) as con:
        counted = con.execute(
            "SELECT original_name, count(*) FROM image_metadata WHERE source = 'upload' GROUP BY 1"
        ).fetchall()
    assert sorted(counted) == sorted((name, 1) for name in names)


def _vendor_run(env: dict[str, str], partition: str, data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", VENDOR_RUN, partition, str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_of_one_vendor_take_turns_at_the_ledger_and_the_csv(demo_server, tmp_path):
    """Started at once (outside the run queue, which would keep them apart anyway): the
    vendor's lease is held by someone else at first, both runs wait for it at their
    writing steps, then take turns; the CSV and the ledger are what one run makes."""
    from image_assets.catalog.kits_csv import parse_csv
    from image_assets.layout import kits_csv_key

    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IMAGE_ASSETS_PROFILE": "local",
        "IMAGE_ASSETS_DATA_DIR": str(data),
    }
    env.pop("CLOUDINARY_URL", None)
    leases = Leases(LocalBlobStore(data / "raw"), 30)
    blocker = leases.acquire("vendor/loc", "an earlier run")
    assert blocker is not None
    runs = [_vendor_run(env, "loc", data) for _ in range(2)]
    # both crawl, download and render meanwhile, then wait at publishing
    with DagsterInstance.from_config(str(home)) as instance:
        deadline = time.time() + 240
        while time.time() < deadline:
            waiting = [
                run.run_id
                for run in instance.get_runs()
                if any(
                    "held by an earlier run" in (e.message or "")
                    for e in instance.all_logs(run.run_id)
                )
            ]
            if len(waiting) == 2 or any(r.poll() is not None for r in runs):
                break
            leases.renew(blocker)
            time.sleep(0.5)
    assert len(waiting) == 2, "both runs should be waiting for the lease"
    leases.release(leases.current("vendor/loc"))
    results = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["success"] for r in results)
    waited = [line for r in results for line in r["logs"] if "vendor/loc is held by" in line]
    assert sum("an earlier run" in line for line in waited) == 2, waited
    # then each writing step of each run took the lease in turn: a generation each
    generations = sorted(leases.store.list("leases/vendor/loc"))
    owners = [json.loads(leases.store.get(k))["owner"] for k in generations]
    assert owners[0] == "an earlier run"
    assert len(owners) == 5 and len({o.split(":")[0] for o in owners[1:]}) == 2, owners

    csv = (data / "raw" / kits_csv_key("loc")).read_bytes()
    rows = parse_csv(csv)
    assert rows and any(r["image"] for r in rows)
    ledgers = list((data / "images").rglob("cdn_ledger/**/loc.json"))
    assert len(ledgers) == 1
    recorded = json.loads(ledgers[0].read_text())
    assert {r["image"] for r in rows if r["image"]} <= set(recorded)  # every one recorded
    assert leases.holder("vendor/loc") is None

    # a third run alone changes nothing: the two left exactly what one run leaves
    alone = _vendor_run(env, "loc", data)
    out, err = alone.communicate(timeout=300)
    assert alone.returncode == 0, err[-3000:]
    third = json.loads(out.strip().splitlines()[-1])
    assert third["success"]
    assert third["metadata"]["kits_csv"]["changed"] is False
    assert third["metadata"]["cdn_uploads"]["images_uploaded"] == 0
    assert json.loads(ledgers[0].read_text()) == recorded
