"""Schedules and automation: a daily refresh of every vendor, the catalog right after.

The vendor refresh is a schedule, not declarative automation: it must run every
day even when nothing upstream changed (vendors change their sites without
telling anyone), one run per manufacturer so a broken vendor fails alone and
the run queue's per-vendor limit applies. ``clean_kits`` uses declarative
automation (``eager``): it follows whatever updates the kits CSVs, scheduled or
by hand, and waits until every manufacturer has one.
"""

import os

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    schedule,
)

from image_assets.defs.jobs import vendor_catalog_job
from image_assets.defs.partitions import manufacturer_partitions


@schedule(
    job=vendor_catalog_job,
    cron_schedule=os.environ.get("IMAGE_ASSETS_REFRESH_CRON") or "0 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every manufacturer partition, once a day (IMAGE_ASSETS_REFRESH_CRON).",
)
def daily_vendor_refresh(context: ScheduleEvaluationContext) -> list[RunRequest]:
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    return [
        RunRequest(
            partition_key=key, run_key=f"{day}:{key}", tags={"image_assets/trigger": "daily"}
        )
        for key in manufacturer_partitions.get_partition_keys()
    ]


catalog_automation = AutomationConditionSensorDefinition(
    "catalog_after_vendors",
    target=AssetSelection.groups("catalog"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Rebuilds clean_kits after the kits CSVs change.",
)

schedules = [daily_vendor_refresh]
sensors = [catalog_automation]
