"""Expiry of uploads nobody activated."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from image_assets.defs.uploads.jobs import expire_uploads_job

expire_uploads_schedule = ScheduleDefinition(
    job=expire_uploads_job,
    cron_schedule="*/15 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: uploads not activated within the TTL (default 2 hours) are deleted.",
)

schedules = [expire_uploads_schedule]
