"""Sensors that turn new uploads into runs: by listing the incoming location, or from
S3 event notifications on an SQS queue. ``IMAGE_ASSETS_UPLOAD_SENSOR`` picks which
one starts running (``listing`` by default, ``sqs``, or ``off``).

Both add one dynamic partition per upload and request one run per upload with a
``run_key`` (Dagster drops a second request with the same key), so seeing an
upload twice never processes it twice. A bad file is the run's business; the
sensor only names files.
"""

import json
import time

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from image_assets.defs.uploads.jobs import upload_job
from image_assets.defs.uploads.partitions import uploads_partitions
from image_assets.defs.uploads.resources import UploadsResource, upload_sensor_mode
from image_assets.uploads.events import parse_s3_event
from image_assets.uploads.keys import partition_key_for
from image_assets.uploads.listing import ListingCursor, new_objects

MODE = upload_sensor_mode()


def _requests(keys_and_versions: list[tuple[str, str]]) -> tuple[list[str], list[RunRequest]]:
    partitions, requests = [], []
    for object_key, version in keys_and_versions:
        partition = partition_key_for(object_key)
        partitions.append(partition)
        requests.append(
            RunRequest(
                partition_key=partition,
                run_key=f"{partition}@{version}",
                tags={"image_assets/kind": "upload", "image_assets/object_key": object_key[:200]},
            )
        )
    return partitions, requests


@sensor(
    job=upload_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING
    if MODE == "listing"
    else DefaultSensorStatus.STOPPED,
    description="New files in the incoming folder/bucket -> one upload run each (cursor: last-modified + key).",
)
def uploads_listing_sensor(context: SensorEvaluationContext, uploads: UploadsResource):
    cursor = ListingCursor.from_json(context.cursor)
    settled = time.time() - uploads.settle_seconds  # a file still being written waits a tick
    objects = [
        o
        for o in uploads.incoming().list_info()
        if not o.key.startswith(".") and o.modified <= settled
    ]
    batch, next_cursor = new_objects(objects, cursor, uploads.max_per_tick)
    if not batch:
        return SkipReason(f"no new uploads since {cursor.key or 'the start'}")
    partitions, requests = _requests([(o.key, f"{o.modified:.6f}") for o in batch])
    context.log.info(
        f"{len(batch)} new upload(s); {len(objects) - len(batch)} other file(s) listed"
    )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[uploads_partitions.build_add_request(partitions)],
        cursor=next_cursor.to_json(),
    )


@sensor(
    job=upload_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING if MODE == "sqs" else DefaultSensorStatus.STOPPED,
    description="S3 event notifications on SQS -> one upload run each; messages are deleted "
    "on the next tick, after their run requests were recorded.",
)
def uploads_queue_sensor(context: SensorEvaluationContext, uploads: UploadsResource):
    sqs = uploads.sqs_client()
    state = json.loads(context.cursor) if context.cursor else {"pending": []}
    # The previous tick's run requests were recorded together with its cursor: only
    # now is it safe to delete those messages. A crash before that leaves them in the
    # queue; they come back after the visibility timeout and their run_keys dedupe.
    for receipt in state.get("pending", []):
        sqs.delete_message(QueueUrl=uploads.queue_url, ReceiptHandle=receipt)
    received = sqs.receive_message(
        QueueUrl=uploads.queue_url,
        MaxNumberOfMessages=min(10, uploads.max_per_tick),
        VisibilityTimeout=uploads.queue_visibility_seconds,
        WaitTimeSeconds=1,
    ).get("Messages", [])
    prefix = uploads.incoming_prefix.strip("/") + "/" if uploads.incoming_prefix else ""
    found: list[tuple[str, str]] = []
    for message in received:
        for event in parse_s3_event(message.get("Body", "")):
            if event.key.startswith(prefix):
                found.append((event.key[len(prefix) :], event.sequencer or event.etag))
    cursor = json.dumps({"pending": [m["ReceiptHandle"] for m in received]})
    if not found:
        return SensorResult(
            skip_reason=SkipReason(f"{len(received)} message(s), no new uploads"), cursor=cursor
        )
    partitions, requests = _requests(found)
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[uploads_partitions.build_add_request(sorted(set(partitions)))],
        cursor=cursor,
    )


sensors = [uploads_listing_sensor, uploads_queue_sensor]
