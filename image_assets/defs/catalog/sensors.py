"""Declarative automation for the catalog tables.

``clean_kits`` and ``image_metadata`` use ``AutomationCondition.eager()``: they
follow whatever updated their inputs (the daily schedule, a backfill, an upload
or a hand-run), once every manufacturer has a kits CSV.
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

from image_assets.defs.catalog.assets import GROUP

catalog_automation = AutomationConditionSensorDefinition(
    "catalog_after_vendors",
    target=AssetSelection.groups(GROUP),
    default_status=DefaultSensorStatus.RUNNING,
    description="Rebuilds clean_kits after the kits CSVs change, image_metadata after new audit rows.",
)

sensors = [catalog_automation]
