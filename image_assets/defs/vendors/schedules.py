"""A daily refresh of every vendor.

A schedule, not declarative automation: it must run every day even when nothing
upstream changed (vendors change their sites without telling anyone), one run
per manufacturer so a broken vendor fails alone and the run queue's per-vendor
limit applies.
"""

import os

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from image_assets.defs.vendors.jobs import vendor_catalog_job
from image_assets.defs.vendors.partitions import manufacturer_partitions


@schedule(
    job=vendor_catalog_job,
    cron_schedule=os.environ.get("IMAGE_ASSETS_REFRESH_CRON") or "0 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every manufacturer partition, once a day (IMAGE_ASSETS_REFRESH_CRON).",
)
def daily_vendor_refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
    assert context.scheduled_execution_time is not None
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        RunRequest(
            partition_key=key, run_key=f"{day}:{key}", tags={"image_assets/trigger": "daily"}
        )
        for key in manufacturer_partitions.get_partition_keys()
    ]


schedules = [daily_vendor_refresh]
