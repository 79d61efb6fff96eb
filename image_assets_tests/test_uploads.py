"""Uploads: sensors with cursors, real S3 listing and S3->SQS notifications on moto,
and the upload flow end to end (processed, rejected, audited, activated, expired)."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import boto3
import duckdb
from dagster import DagsterInstance, build_sensor_context, materialize
from dagster_aws.s3 import S3Resource

from image_assets.defs.catalog.assets import clean_kits, image_metadata
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads.assets import assets as upload_assets
from image_assets.defs.uploads.jobs import activate_upload_job, expire_uploads_job
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.defs.uploads.sensors import uploads_listing_sensor, uploads_queue_sensor
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.demo.images import ImageSpec, render_image
from image_assets.storage.base import ObjectInfo
from image_assets.uploads.events import parse_s3_event
from image_assets.uploads.keys import object_key_for, partition_key_for
from image_assets.uploads.listing import ListingCursor, new_objects


def test_partition_keys_are_reversible_and_safe():
    for key in ["photo.jpg", "My Photo,1|2.jpg", "dir/été 100%.png", "a+b&c.jpg"]:
        partition = partition_key_for(key)
        assert "," not in partition and "|" not in partition
        assert object_key_for(partition) == key
    assert partition_key_for("incoming/x.jpg", "incoming/") == "x.jpg"


def test_listing_cursor_equal_timestamps_deletions_and_bound():
    objects = [ObjectInfo(100.0, k) for k in ("b.jpg", "a.jpg", "c.jpg")] + [
        ObjectInfo(99.0, "z.jpg")
    ]
    batch, cursor = new_objects(objects, ListingCursor(), limit=2)
    assert [o.key for o in batch] == ["z.jpg", "a.jpg"] and cursor == ListingCursor(100.0, "a.jpg")
    # same timestamp, later keys still come; a deleted file (z) changes nothing
    batch, cursor = new_objects([o for o in objects if o.key != "z.jpg"], cursor, limit=2)
    assert [o.key for o in batch] == ["b.jpg", "c.jpg"]
    assert new_objects(objects, cursor, limit=2) == ([], cursor)
    assert ListingCursor.from_json(cursor.to_json()) == cursor


def test_s3_events_skip_test_events_and_decode_keys():
    assert parse_s3_event(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    body = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "b"},
                    "object": {"key": "incoming/My+Photo%2B1.jpg", "eTag": "e", "sequencer": "01"},
                },
            }
        ]
    }
    (event,) = parse_s3_event(json.dumps(body))
    assert event.key == "incoming/My Photo+1.jpg" and event.sequencer == "01"
    assert parse_s3_event("not json") == []


def _jpeg(seed: str, size=(640, 480), orientation: int = 1) -> bytes:
    return render_image(ImageSpec(seed, *size, orientation=orientation))


def _tick(sensor, instance, uploads, cursor=None):
    with build_sensor_context(
        instance=instance, cursor=cursor, resources={"uploads": uploads}
    ) as context:
        return sensor(context)


def _local_uploads(tmp_path: Path, **kw) -> UploadsResource:
    return UploadsResource(kind="local", data_dir=str(tmp_path), s3=S3Resource(), **kw)


def test_listing_sensor_bounds_and_cursor(tmp_path):
    uploads = _local_uploads(tmp_path, max_per_tick=2)
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "still-writing.jpg").write_bytes(b"x")  # modified just now: waits
    incoming = tmp_path / "incoming"
    for i, name in enumerate(["a.jpg", "b,1.jpg", "c|2.jpg"]):
        path = incoming / name
        path.write_bytes(b"x")
        os.utime(path, (1000 + (i > 0), 1000 + (i > 0)))  # b and c share a timestamp
    with DagsterInstance.ephemeral() as instance:
        first = _tick(uploads_listing_sensor, instance, uploads)
        assert [r.partition_key for r in first.run_requests] == ["a.jpg", "b%2C1.jpg"]
        assert first.dynamic_partitions_requests[0].partition_keys == ["a.jpg", "b%2C1.jpg"]
        (incoming / "a.jpg").unlink()  # processed and moved away
        second = _tick(uploads_listing_sensor, instance, uploads, first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["c%7C2.jpg"]
        third = _tick(uploads_listing_sensor, instance, uploads, second.cursor)
        assert "no new uploads" in str(third)
    assert len(json.loads(second.cursor)) == 2  # a timestamp and one key, never a file list


def test_s3_listing_and_sqs_notifications_lose_nothing(aws_env):
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    bucket = f"uploads-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName=f"uploads-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
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
    for name in ("one.jpg", "My Photo+2.jpg"):
        s3.put_object(Bucket=bucket, Key=f"incoming/{name}", Body=b"x")
    uploads = UploadsResource(
        kind="s3",
        settle_seconds=0,
        bucket=bucket,
        queue_url=queue,
        queue_visibility_seconds=1,
        s3=S3Resource(endpoint_url=aws_env, region_name="us-east-1"),
    )

    with DagsterInstance.ephemeral() as instance:
        listed = _tick(uploads_listing_sensor, instance, uploads)
        assert sorted(r.partition_key for r in listed.run_requests) == ["My Photo+2.jpg", "one.jpg"]

        first = _tick(uploads_queue_sensor, instance, uploads)
        keys = sorted(r.partition_key for r in first.run_requests)
        assert keys == ["My Photo+2.jpg", "one.jpg"]  # the s3:TestEvent was skipped, keys decoded
        # the process dies before the tick is recorded: the messages were not deleted ...
        time.sleep(1.5)
        again = _tick(uploads_queue_sensor, instance, uploads)
        assert sorted(r.partition_key for r in again.run_requests) == keys
        assert {r.run_key for r in again.run_requests} == {
            r.run_key for r in first.run_requests
        }  # deduped by Dagster
        # ... and once a tick is recorded, the next one deletes them
        _tick(uploads_queue_sensor, instance, uploads, again.cursor)
    time.sleep(1.5)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"] == "0"
        and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def test_upload_flow_end_to_end(tmp_path, demo_server):
    data = tmp_path / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "rocket,launch.jpg").write_bytes(_jpeg("up1", (1200, 800), orientation=6))
    (incoming / "alpha.png").write_bytes(
        render_image(ImageSpec("up2", 500, 400, format="PNG", alpha=True))
    )
    (incoming / "error.jpg").write_bytes(b"<html><body>Forbidden</body></html>")
    for path in incoming.iterdir():
        os.utime(path, (time.time() - 10, time.time() - 10))  # settled: not being written any more
    resources = build_resources(str(data))
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = _tick(uploads_listing_sensor, instance, resources["uploads"])
        instance.add_dynamic_partitions(
            "uploads", result.dynamic_partitions_requests[0].partition_keys
        )
        for request in result.run_requests:
            run = materialize(
                upload_assets,
                partition_key=request.partition_key,
                resources=resources,
                instance=instance,
            )
            assert run.success  # a bad file is a rejected upload, not a failed run
        assert not any(incoming.iterdir())  # every file moved out of the incoming folder
        assert (data / "rejected" / "error.jpg").is_file()
        assert (
            "not an image"
            in json.loads((data / "rejected" / "error.jpg.reason.json").read_text())["reason"]
        )

        audit = {p.name: json.loads(p.read_text()) for p in (data / "raw/audit/uploads").iterdir()}
        assert {a["status"] for a in audit.values()} == {"processed", "rejected"}
        photo = audit["rocket%2Claunch.jpg.json"]
        assert (photo["width"], photo["height"]) == (1200, 800) and photo["renditions"] == 10
        assert photo["key"].endswith(".jpg") and photo["key"][:8].isdigit()
        thumbs = list((data / "images").rglob("thumb_200.webp"))
        assert len(thumbs) == 2

        table = materialize(
            [*upload_assets, *vendor_assets, clean_kits, image_metadata],
            selection=[image_metadata],
            resources=resources,
            instance=instance,
        )
        assert table.success
        with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
            rows = dict(
                con.execute(
                    "select status, count(*) from image_metadata where source = 'upload' group by 1"
                ).fetchall()
            )
        assert rows == {"processed": 2, "rejected": 1}

        activated = activate_upload_job.execute_in_process(
            run_config={
                "ops": {"activate_upload": {"config": {"upload_id": "rocket%2Claunch.jpg"}}}
            },
            resources=resources,
            instance=instance,
        )
        assert activated.success
        public = data / "public" / "uploads" / photo["key"].rsplit(".", 1)[0]
        assert (public / "original.jpg").is_file() and (public / "thumb_200.webp").is_file()
        assert (
            json.loads((data / "raw/audit/uploads/rocket%2Claunch.jpg.json").read_text())["status"]
            == "activated"
        )

        expire_resources = {**resources, "uploads": _local_uploads(data, ttl_hours=1e-6)}
        assert expire_uploads_job.execute_in_process(
            resources=expire_resources, instance=instance
        ).success
        statuses = {
            n: json.loads((data / "raw/audit/uploads" / n).read_text())["status"] for n in audit
        }
        assert statuses == {
            "rocket%2Claunch.jpg.json": "activated",
            "alpha.png.json": "expired",
            "error.jpg.json": "rejected",
        }
        assert (
            len(list((data / "images").rglob("thumb_200.webp"))) == 0
        )  # activated moved, expired deleted
        assert (public / "thumb_200.webp").is_file()
