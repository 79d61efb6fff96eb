"""Uploads: claims out of the incoming folder or bucket, batches of uploads per run, the
audit table, activation and expiry; hostile names, symlinks, slow writers, duplicates,
S3 listing and S3->SQS notifications on the moto server."""

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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from image_assets.catalog.audit import audit_columns
from image_assets.defs.catalog.assets import clean_kits, image_metadata, image_tags_table
from image_assets.defs.profiles import build_resources
from image_assets.defs.uploads.assets import assets as upload_assets
from image_assets.defs.uploads.jobs import activate_upload_job, expire_uploads_job
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.defs.uploads.sensors import uploads_listing_sensor, uploads_queue_sensor
from image_assets.defs.vendors.assets import assets as vendor_assets
from image_assets.demo.images import ImageSpec, render_image
from image_assets.uploads.events import parse_s3_event
from image_assets.uploads.intake import display_name
from image_assets_tests.corpus import png_bomb
from image_assets_tests.metadata import plain

RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


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


def _tick(sensor, instance, resources, cursor=None):
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"uploads": resources["uploads"], "storage": resources["storage"]},
    ) as context:
        return sensor(context)


def _local(data: Path, **uploads_config) -> dict:
    resources = build_resources(str(data))
    if uploads_config:
        resources["uploads"] = UploadsResource(
            kind="local", data_dir=str(data), s3=S3Resource(), **uploads_config
        )
    return resources


def _settled(path: Path, age: float = 10.0) -> None:
    os.utime(path, (time.time() - age, time.time() - age), follow_symlinks=False)


def _launch(instance, resources, request):
    """Run one run request of an upload sensor (a batch range, or one upload)."""
    if RANGE[0] in request.tags:
        run = materialize(
            upload_assets, resources=resources, instance=instance, tags=dict(request.tags)
        )
    else:
        run = materialize(
            upload_assets,
            partition_key=request.partition_key,
            resources=resources,
            instance=instance,
        )
    assert run.success  # a bad file is a rejected upload, not a failed run
    return run


def _add_and_run(instance, resources, result) -> list:
    """What the daemon does with a tick: add its partitions, launch its runs."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions("uploads", list(request.partition_keys))
    return [_launch(instance, resources, request) for request in result.run_requests]


def _audit(data: Path) -> dict[str, dict]:
    folder = data / "raw" / "audit" / "uploads"
    rows = [json.loads(p.read_text()) for p in folder.iterdir()] if folder.is_dir() else []
    return {row["key"]: row for row in rows}


def _activate(upload_id: str, resources, instance, **kw):
    return activate_upload_job.execute_in_process(
        run_config={"ops": {"activate_upload": {"config": {"upload_id": upload_id}}}},
        resources=resources,
        instance=instance,
        **kw,
    )


def test_listing_sensor_claims_settled_files_in_batches(tmp_path):
    data = tmp_path / "data"
    incoming = data / "incoming"
    (incoming / "sub").mkdir(parents=True)
    for name in ["a.jpg", "b,1.jpg", "c|2.jpg", "sub/d.jpg", "old.jpg"]:
        (incoming / name).write_bytes(b"x")
        _settled(incoming / name)
    _settled(incoming / "old.jpg", age=10 * 365 * 86400)  # moved in with an old time: still seen
    (incoming / "writing.jpg").write_bytes(b"x")  # modified just now: waits
    for temporary in (".hidden.jpg", "upload.jpg.part", "x.jpg~"):
        (incoming / temporary).write_bytes(b"x")
        _settled(incoming / temporary)
    resources = _local(data, batch_size=2)
    with DagsterInstance.ephemeral() as instance:
        first = _tick(uploads_listing_sensor, instance, resources)
        (added,) = first.dynamic_partitions_requests
        keys = list(added.partition_keys)
        assert len(keys) == 5 and all(k.startswith("u") and len(k) == 25 for k in keys)
        ranges = [(r.tags[RANGE[0]], r.tags[RANGE[1]]) for r in first.run_requests]
        assert ranges == [(keys[0], keys[1]), (keys[2], keys[3]), (keys[4], keys[4])]
        left = sorted(
            p.relative_to(incoming).as_posix() for p in incoming.rglob("*") if p.is_file()
        )
        assert left == [".hidden.jpg", "upload.jpg.part", "writing.jpg", "x.jpg~"]
        rows = _audit(data)
        assert sorted(r["original_name"] for r in rows.values()) == [
            "a.jpg",
            "b,1.jpg",
            "c|2.jpg",
            "d.jpg",
            "old.jpg",
        ]
        assert {r["status"] for r in rows.values()} == {"waiting"}
        instance.add_dynamic_partitions("uploads", keys)
        second = _tick(uploads_listing_sensor, instance, resources)
        assert not second.run_requests and not second.dynamic_partitions_requests


def test_hostile_incoming_never_blocks_and_never_leaves_the_root(tmp_path):
    data = tmp_path / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(_jpeg("secret"))
    inside = incoming / "real.jpg"
    inside.write_bytes(_jpeg("real"))
    (incoming / "link-out.jpg").symlink_to(outside)
    (incoming / "link-in.jpg").symlink_to(inside)
    (incoming / "dirlink").symlink_to(tmp_path)
    (incoming / "back\\slash.jpg").write_bytes(_jpeg("bs"))
    (incoming / "new\nline.jpg").write_bytes(_jpeg("nl"))
    long_name = ("é" * 120) + ".jpg"  # 244 bytes: valid, and 1,000+ once percent-encoded
    (incoming / long_name).write_bytes(_jpeg("long"))
    (incoming / "bomb.png").write_bytes(png_bomb())
    (incoming / "same-bytes.jpg").write_bytes(_jpeg("real"))  # a duplicate by content
    os.mkfifo(incoming / "fifo")
    for path in incoming.iterdir():
        _settled(path)
    before = outside.read_bytes()
    resources = _local(data)
    with DagsterInstance.ephemeral() as instance:
        result = _tick(uploads_listing_sensor, instance, resources)
        _add_and_run(instance, resources, result)
        assert not any(incoming.iterdir())  # every entry ended somewhere
        by_name = {r["original_name"]: r for r in _audit(data).values()}
        assert len(by_name) == 10, sorted(by_name)
        for entry in ("link-out.jpg", "link-in.jpg", "dirlink", "fifo"):
            assert by_name[entry]["status"] == "rejected", by_name[entry]
            assert by_name[entry]["failure"] == "not_a_file"
        for ok in ("real.jpg", "same-bytes.jpg", "back\\slash.jpg", "new\\nline.jpg", long_name):
            assert by_name[ok]["status"] == "processed", by_name[ok]
        assert by_name["bomb.png"]["status"] == "rejected"
        assert by_name["bomb.png"]["failure"] == "bomb"
        # the same bytes under two names are two uploads that activate independently
        for name in ("real.jpg", "same-bytes.jpg"):
            assert _activate(by_name[name]["key"], resources, instance).success
        again = _activate(by_name["real.jpg"]["key"], resources, instance, raise_on_error=False)
        assert not again.success
        (failure,) = [e for e in again.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "not processed and waiting (status: activated)" in str(failure.event_specific_data)
        unknown = _activate("u000", resources, instance, raise_on_error=False)
        assert not unknown.success
    assert outside.read_bytes() == before and inside.exists() is False  # moved, as claimed


def test_same_name_uploaded_twice_gives_two_uploads(tmp_path):
    data = tmp_path / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True)
    resources = _local(data)
    with DagsterInstance.ephemeral() as instance:
        for seed in ("first", "second"):
            (incoming / "photo.jpg").write_bytes(_jpeg(seed))
            _settled(incoming / "photo.jpg")
            _add_and_run(instance, resources, _tick(uploads_listing_sensor, instance, resources))
        rows = [r for r in _audit(data).values() if r["original_name"] == "photo.jpg"]
        assert len(rows) == 2 and {r["status"] for r in rows} == {"processed"}
        assert len({r["sha256"] for r in rows}) == 2


def test_a_writer_that_pauses_loses_nothing(tmp_path):
    """A file seen settled while its writer only paused: claimed, found truncated, it waits
    (not rejected, not deleted); the rest lands in the claimed file, and the next run
    processes it whole."""
    data = tmp_path / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True)
    whole = _jpeg("slow", (1200, 900))
    path = incoming / "slow.jpg"
    resources = _local(data)
    with path.open("wb") as writer, DagsterInstance.ephemeral() as instance:
        writer.write(whole[: len(whole) // 2])
        writer.flush()
        _settled(path, age=5)  # the pause: longer than the settle time
        _add_and_run(instance, resources, _tick(uploads_listing_sensor, instance, resources))
        (row,) = _audit(data).values()
        assert row["status"] == "waiting" and "truncated" in row["reason"], row
        writer.write(whole[len(whole) // 2 :])  # the writer goes on, into the claimed file
        writer.flush()
        retry = materialize(
            upload_assets, partition_key=row["key"], resources=resources, instance=instance
        )
        assert retry.success
    (row,) = _audit(data).values()
    assert row["status"] == "processed" and row["bytes"] == len(whole)


def _s3_uploads(aws_env: str) -> tuple[str, str, UploadsResource]:
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
    uploads = UploadsResource(
        kind="s3",
        bucket=bucket,
        queue_url=queue,
        queue_visibility_seconds=1,
        s3=S3Resource(endpoint_url=aws_env, region_name="us-east-1"),
    )
    return bucket, queue, uploads


HOSTILE_KEYS = ["one.jpg", "My Photo+2.jpg", "back\\slash.jpg", "ünï/cödé 100%.jpg", "x" * 600]


def test_sqs_notifications_on_hostile_keys_lose_nothing(aws_env, tmp_path):
    bucket, queue, uploads = _s3_uploads(aws_env)
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for name in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=f"incoming/{name}", Body=_jpeg(name[:20]))
    resources = {**build_resources(str(tmp_path / "data")), "uploads": uploads}
    with DagsterInstance.ephemeral() as instance:
        first = _tick(uploads_queue_sensor, instance, resources)
        (added,) = first.dynamic_partitions_requests
        assert len(added.partition_keys) == len(HOSTILE_KEYS)
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/").get("KeyCount", 0)
        assert listed == 0  # every object claimed out of incoming
        # the process dies before the tick is recorded: the messages come back, find their
        # objects claimed (nothing is claimed twice), and the claimed uploads that never
        # became partitions are added again, under the same ids
        time.sleep(1.5)
        again = _tick(uploads_queue_sensor, instance, resources)
        (readded,) = again.dynamic_partitions_requests
        assert sorted(readded.partition_keys) == sorted(added.partition_keys)
        _add_and_run(instance, resources, again)
        # once a tick is recorded, the next one deletes its messages
        _tick(uploads_queue_sensor, instance, resources, again.cursor)
    rows = _audit(tmp_path / "data")
    assert sorted(r["original_name"] for r in rows.values()) == sorted(
        display_name(n.rsplit("/", 1)[-1])
        for n in HOSTILE_KEYS  # long names are shortened
    )
    assert {r["status"] for r in rows.values()} == {"processed"}
    time.sleep(1.5)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_s3_listing_claims_hostile_keys(aws_env, tmp_path):
    bucket, _queue, uploads = _s3_uploads(aws_env)
    s3 = boto3.client("s3")
    for name in HOSTILE_KEYS:
        s3.put_object(Bucket=bucket, Key=f"incoming/{name}", Body=b"not an image")
    resources = {**build_resources(str(tmp_path / "data")), "uploads": uploads}
    with DagsterInstance.ephemeral() as instance:
        result = _tick(uploads_listing_sensor, instance, resources)
        _add_and_run(instance, resources, result)
    rows = _audit(tmp_path / "data")
    assert len(rows) == len(HOSTILE_KEYS)
    assert {(r["status"], r["failure"]) for r in rows.values()} == {
        ("rejected", "unsupported_format")
    }
    rejected = s3.list_objects_v2(Bucket=bucket, Prefix="rejected/")["Contents"]
    assert len(rejected) == 2 * len(HOSTILE_KEYS)  # the bytes and the reason, by upload id


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
        _settled(path)
    resources = build_resources(str(data))
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = _tick(uploads_listing_sensor, instance, resources)
        assert len(result.run_requests) == 1  # one run for the three uploads
        _add_and_run(instance, resources, result)
        assert not any(incoming.iterdir())  # every file moved out of the incoming folder
        rows = {r["original_name"]: r for r in _audit(data).values()}
        error = rows["error.jpg"]
        reason = json.loads((data / "rejected" / f"{error['key']}.reason.json").read_text())
        assert "not an image" in reason["reason"] and reason["name"] == "error.jpg"
        assert (data / "rejected" / error["key"]).read_bytes().startswith(b"<html>")
        photo = rows["rocket,launch.jpg"]
        assert (photo["width"], photo["height"]) == (1200, 800) and photo["renditions"] == 10
        thumbs = list((data / "images").rglob("thumb_200.webp"))
        assert len(thumbs) == 2

        table = materialize(
            [*upload_assets, *vendor_assets, clean_kits, image_metadata, image_tags_table],
            selection=[image_metadata, image_tags_table],
            resources=resources,
            instance=instance,
        )
        assert table.success
        with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
            counts = dict(
                con.execute(
                    "select status, count(*) from image_metadata where source = 'upload' group by 1"
                ).fetchall()
            )
        assert counts == {"processed": 2, "rejected": 1}
        (mat,) = table.asset_materializations_for_node("image_metadata")
        schema = mat.metadata["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == list(audit_columns())  # the UI's Columns
        assert mat.metadata["dagster/row_count"].value == 3
        assert plain(mat.metadata)["rows_by_status"] == {"processed": 2, "rejected": 1}
        with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
            tags = {
                key: (status, colour, reason)
                for key, status, colour, reason in con.execute(
                    "select key, status, average_colour, reason from image_tags"
                    " where source = 'upload'"
                ).fetchall()
            }
        assert tags.keys() == {r["key"] for r in rows.values()}  # one row per upload
        assert tags[photo["key"]][0] == "ok" and tags[photo["key"]][1].startswith("#")
        assert tags[error["key"]][0] == "failed" and "not an image" in tags[error["key"]][2]

        assert _activate(photo["key"], resources, instance).success
        public = data / "public" / "uploads"
        (folder,) = public.iterdir()
        assert (folder / "original.jpg").is_file() and (folder / "thumb_200.webp").is_file()
        assert _audit(data)[photo["key"]]["status"] == "activated"

        expire_resources = {**resources, "uploads": _local(data, ttl_hours=1e-6)["uploads"]}
        assert expire_uploads_job.execute_in_process(
            resources=expire_resources, instance=instance
        ).success
        statuses = {r["original_name"]: r["status"] for r in _audit(data).values()}
        assert statuses == {
            "rocket,launch.jpg": "activated",
            "alpha.png": "expired",
            "error.jpg": "rejected",
        }
        assert len(list((data / "images").rglob("thumb_200.webp"))) == 0
        assert (folder / "thumb_200.webp").is_file()


def test_image_metadata_follows_uploads_while_other_partitions_are_missing():
    """A failed or never-run upload partition must not hold the audit table back (plain
    eager automation would wait for it forever)."""
    from dagster import (
        AssetKey,
        AssetMaterialization,
        AutomationCondition,
        Definitions,
        evaluate_automation_conditions,
    )

    def requested(assets: list) -> int:
        definitions = Definitions(assets=assets, resources=build_resources("/nonexistent"))
        with DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions("uploads", ["u-done", "u-failed"])
            first = evaluate_automation_conditions(defs=definitions, instance=instance)
            instance.report_runless_asset_event(
                AssetMaterialization("upload_renditions", partition="u-done")
            )
            second = evaluate_automation_conditions(
                defs=definitions, instance=instance, cursor=first.cursor
            )
            return second.get_num_requested(AssetKey("image_metadata"))

    graph = [*upload_assets, *vendor_assets, image_metadata]
    assert requested(graph) == 1
    plain = image_metadata.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=AutomationCondition.eager())
    )
    assert requested([*upload_assets, *vendor_assets, plain]) == 0


SENSOR_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["appear", "modify", "rename", "delete", "tick", "run"]),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=3),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=SENSOR_EVENTS)
def test_the_listing_sensor_loses_nothing_whatever_the_order_of_events(tmp_path_factory, events):
    """Files appear, change, are renamed or deleted between real sensor ticks and upload
    runs; at the end every file is exactly one upload with its bytes, and incoming is empty."""
    data = tmp_path_factory.mktemp("sensor") / "data"
    incoming = data / "incoming"
    incoming.mkdir(parents=True)
    resources = _local(data, batch_size=2)
    names = [f"f{i}.jpg" for i in range(4)]
    pending = []
    with DagsterInstance.ephemeral() as instance:
        for counter, (op, i, j) in enumerate(events):
            path = incoming / names[i]
            if op == "appear" and not path.exists():
                path.write_bytes(b"junk %d" % counter)
                _settled(path)
            elif op == "modify" and path.exists():
                path.write_bytes(path.read_bytes() + b"+%d" % counter)
                _settled(path)
            elif op == "rename" and path.exists() and i != j:
                path.rename(incoming / names[j])
            elif op == "delete" and path.exists():
                path.unlink()
            elif op == "tick":  # the daemon records a tick's partitions before the next tick
                result = _tick(uploads_listing_sensor, instance, resources)
                for request in result.dynamic_partitions_requests:
                    instance.add_dynamic_partitions("uploads", list(request.partition_keys))
                pending.extend(result.run_requests)  # runs start whenever the queue allows
            elif op == "run" and pending:
                _launch(instance, resources, pending.pop(0))
        final = sorted(p.read_bytes() for p in incoming.iterdir())
        for request in pending:
            _launch(instance, resources, request)
        _add_and_run(instance, resources, _tick(uploads_listing_sensor, instance, resources))
    claimed = data / "claimed"
    assert not any(incoming.iterdir()) and not (claimed.exists() and any(claimed.iterdir()))
    rows = _audit(data)
    assert {r["status"] for r in rows.values()} <= {"rejected"}  # junk bytes, kept with a reason
    kept = sorted((data / "rejected" / key).read_bytes() for key in rows)
    assert len(kept) == len(rows) and all(b in kept for b in final)


def test_a_listing_that_fails_is_one_skip_line_not_an_error_every_tick(aws_env, tmp_path):
    """The uploads bucket does not exist (a first setup): the tick is skipped with the
    reason, and once the bucket exists the same sensor lists it."""
    resources = build_resources(str(tmp_path))
    resources["uploads"] = UploadsResource(
        kind="s3", data_dir=str(tmp_path), s3=S3Resource(), bucket="not-created-yet"
    )
    with DagsterInstance.ephemeral() as instance:
        result = _tick(uploads_listing_sensor, instance, resources)
        assert not result.run_requests
        reason = result.skip_reason.skip_message
        assert reason.startswith("cannot list incoming uploads:") and "NoSuchBucket" in reason
        assert "\n" not in reason
        boto3.client("s3").create_bucket(Bucket="not-created-yet")
        assert _tick(uploads_listing_sensor, instance, resources).skip_reason.skip_message == (
            "incoming: nothing new"
        )
