"""Sensors that turn new uploads into runs: by looking at the incoming location, or from
S3 event notifications on an SQS queue. ``IMAGE_ASSETS_UPLOAD_SENSOR`` picks which
one starts running (``listing`` by default, ``sqs``, or ``off``).

Each tick claims settled files out of incoming (``uploads/lifecycle.receive``), adds
one dynamic partition per upload id, and requests runs that each process a batch
of them (a partition range; the upload assets have a single-run backfill policy).
There is no cursor of files: what is claimed has left incoming, and claimed
uploads still waiting are requested again (their run keys make Dagster drop the
repeats). One bad entry never stops the tick: its error is logged and recorded,
and the others go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from image_assets.defs.resources import StorageResource
from image_assets.defs.uploads.jobs import upload_job
from image_assets.defs.uploads.partitions import uploads_partitions
from image_assets.defs.uploads.resources import UploadsResource, upload_sensor_mode
from image_assets.uploads.events import parse_s3_event
from image_assets.uploads.intake import Arrival, S3Incoming, display_name
from image_assets.uploads.lifecycle import UploadStores, busy_uploads, receive, reconcile

MODE = upload_sensor_mode()
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
RETRY_AFTER = 60  # an upload still waiting this long after its last try is tried again
RETRY_INTERVAL = 300  # and at most once in this many seconds


def _batches(upload_ids: list[str], size: int) -> list[list[str]]:
    return [upload_ids[i : i + size] for i in range(0, len(upload_ids), size)]


def _run_requests(
    new_ids: list[str], retries: list[str], batch_size: int, now: float
) -> list[RunRequest]:
    """One run per batch of new uploads (a partition range: they were added in this order),
    and one per upload to try again (at most one per upload every five minutes)."""
    requests = [
        RunRequest(
            run_key=f"batch:{batch[0]}:{batch[-1]}",
            tags={RANGE_START: batch[0], RANGE_END: batch[-1], "image_assets/kind": "upload"},
        )
        for batch in _batches(new_ids, batch_size)
    ]
    requests += [
        RunRequest(
            partition_key=upload_id,
            run_key=f"retry:{upload_id}:{int(now // RETRY_INTERVAL)}",
            tags={"image_assets/kind": "upload"},
        )
        for upload_id in retries
    ]
    return requests


def _upload_runs_not_started(context: SensorEvaluationContext) -> bool:
    """Whether an upload run is still queued or starting: it has not leased its uploads
    yet, so they look free although a run will take them."""
    not_started = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
    runs = context.instance.get_runs_count(
        RunsFilter(statuses=not_started, tags={"image_assets/kind": "upload"})
    )
    return runs > 0


def _receive_all(
    context: SensorEvaluationContext,
    stores: UploadStores,
    arrivals: Iterable[Arrival],
    uploads: UploadsResource,
    failed: set[str] | None = None,
) -> tuple[list[str], dict[str, int]]:
    """Claim what is settled; every entry isolated from the others (the names of entries
    that raised go to ``failed``: they stay where they are, waiting)."""
    claimed: list[str] = []
    outcomes: dict[str, int] = {}
    # objects in a bucket appear whole: only a folder has half-written files to wait for
    settle = uploads.settle_seconds if stores.area.partial_writes else 0.0
    for arrival in arrivals:
        if len(claimed) >= uploads.max_per_tick:
            break
        try:
            received = receive(stores, arrival, settle)
        except Exception as exc:  # one entry's trouble is logged and never stops the tick
            outcomes["error"] = outcomes.get("error", 0) + 1
            if failed is not None:
                failed.add(arrival.name)
            context.log.warning(
                f"incoming entry {display_name(arrival.name)!r} left waiting: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        outcomes[received.status] = outcomes.get(received.status, 0) + 1
        if received.status == "claimed" and received.upload_id not in claimed:
            claimed.append(received.upload_id)
        elif received.status == "rejected":
            context.log.warning(f"incoming entry {display_name(arrival.name)!r}: {received.reason}")
    return claimed, outcomes


def _result(
    context: SensorEvaluationContext,
    stores: UploadStores,
    claimed: list[str],
    outcomes: dict[str, int],
    uploads: UploadsResource,
    cursor: str | None = None,
) -> SensorResult:
    now = time.time()
    name = uploads_partitions.name or "uploads"
    claimed_now = set(claimed)
    waiting = reconcile(stores, now)
    earlier = [i for i in waiting if i not in claimed_now]
    # claimed before an interruption and never added as partitions: they join this batch
    orphans = [i for i in earlier if not context.instance.has_dynamic_partition(name, i)]
    new_ids = claimed + orphans  # the order they are added in: each batch is a range
    # uploads still waiting from earlier runs (a file whose writer paused, a killed run)
    # are tried again: not while a run holds their lease (it is working on them), nor
    # while an upload run is queued (it may be theirs, and takes its leases on start)
    retries = [i for i in earlier if i not in orphans and now - waiting[i] > RETRY_AFTER]
    if retries and _upload_runs_not_started(context):
        retries = []
    if retries:
        busy = busy_uploads(stores, retries, uploads.lease_seconds)
        retries = [i for i in retries if i not in busy]
    requests = _run_requests(new_ids, retries, uploads.batch_size, now)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "nothing new"
    if not requests:
        return SensorResult(skip_reason=SkipReason(f"incoming: {summary}"), cursor=cursor)
    if new_ids:
        context.log.info(
            f"incoming: {summary}; {len(new_ids)} new upload(s) in {len(requests)} run(s)"
        )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[uploads_partitions.build_add_request(new_ids)]
        if new_ids
        else [],
        cursor=cursor,
    )


@sensor(
    job=upload_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING
    if MODE == "listing"
    else DefaultSensorStatus.STOPPED,
    description="New files in the incoming folder/bucket -> claimed, then processed in batches "
    "of uploads (one run per batch, one partition per upload).",
)
def uploads_listing_sensor(
    context: SensorEvaluationContext, uploads: UploadsResource, storage: StorageResource
):
    stores = uploads.stores(storage)
    try:
        claimed, outcomes = _receive_all(context, stores, stores.area.scan(), uploads)
    except (BotoCoreError, ClientError, OSError) as exc:
        # the listing itself failed (a bucket that does not exist, no network): one line
        # in the tick history, not a traceback every 10 s; what was claimed before the
        # failure is picked up as waiting on the next tick
        return SensorResult(skip_reason=SkipReason(f"cannot list incoming uploads: {exc}"))
    return _result(context, stores, claimed, outcomes, uploads)


@sensor(
    job=upload_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING if MODE == "sqs" else DefaultSensorStatus.STOPPED,
    description="S3 event notifications on SQS -> claimed, then processed in batches; messages "
    "are deleted on the next tick, after their claims and run requests were recorded.",
)
def uploads_queue_sensor(
    context: SensorEvaluationContext, uploads: UploadsResource, storage: StorageResource
):
    sqs = uploads.sqs_client()
    stores = uploads.stores(storage)
    area = stores.area
    state = json.loads(context.cursor) if context.cursor else {"pending": []}
    # The previous tick's claims and run requests were recorded together with its cursor:
    # only now is it safe to delete those messages. A crash before that leaves them in the
    # queue; they come back after the visibility timeout and find their objects claimed.
    for receipt in state.get("pending", []):
        sqs.delete_message(QueueUrl=uploads.queue_url, ReceiptHandle=receipt)
    received = sqs.receive_message(
        QueueUrl=uploads.queue_url,
        MaxNumberOfMessages=min(10, uploads.max_per_tick),
        VisibilityTimeout=uploads.queue_visibility_seconds,
        WaitTimeSeconds=1,
    ).get("Messages", [])
    if not isinstance(area, S3Incoming):
        return SkipReason("the SQS sensor needs the uploads resource on S3 (kind: s3)")
    arrivals: dict[str, list[Arrival]] = {}
    for message in received:
        found = arrivals.setdefault(message["ReceiptHandle"], [])
        for event in parse_s3_event(message.get("Body", "")):
            arrival = area.arrival_for(event.key)
            if arrival is not None:  # gone already (claimed by an earlier delivery)
                found.append(arrival)
    failed: set[str] = set()
    claimed, outcomes = _receive_all(
        context, stores, [a for found in arrivals.values() for a in found], uploads, failed
    )
    # a message whose object could not be received stays in the queue: it comes back
    # after the visibility timeout instead of being deleted with nothing recorded
    done = [r for r, found in arrivals.items() if not any(a.name in failed for a in found)]
    cursor = json.dumps({"pending": done})
    return _result(context, stores, claimed, outcomes, uploads, cursor=cursor)


sensors = [uploads_listing_sensor, uploads_queue_sensor]
