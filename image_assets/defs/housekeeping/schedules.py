"""Weekly CDN housekeeping, one run per manufacturer (the run queue's per-vendor limit
keeps it apart from that vendor's own runs)."""

import os

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from image_assets.defs.housekeeping.jobs import cdn_housekeeping_job, renditions_housekeeping_job
from image_assets.defs.vendors.partitions import manufacturer_partitions


@schedule(
    job=cdn_housekeeping_job,
    cron_schedule=os.environ.get("IMAGE_ASSETS_HOUSEKEEPING_CRON") or "0 5 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every manufacturer partition, once a week (IMAGE_ASSETS_HOUSEKEEPING_CRON).",
)
def weekly_cdn_housekeeping(context: ScheduleEvaluationContext) -> list[RunRequest]:
    assert context.scheduled_execution_time is not None
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        RunRequest(
            partition_key=key,
            run_key=f"housekeeping:{day}:{key}",
            tags={"image_assets/trigger": "weekly"},
        )
        for key in manufacturer_partitions.get_partition_keys()
    ]


@schedule(
    job=renditions_housekeeping_job,
    cron_schedule=os.environ.get("IMAGE_ASSETS_HOUSEKEEPING_CRON") or "0 5 * * 0",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The private store's renditions of earlier configs, once a week.",
)
def weekly_renditions_housekeeping(context: ScheduleEvaluationContext) -> RunRequest:
    assert context.scheduled_execution_time is not None
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return RunRequest(run_key=f"renditions-housekeeping:{day}")


schedules = [weekly_cdn_housekeeping, weekly_renditions_housekeeping]
