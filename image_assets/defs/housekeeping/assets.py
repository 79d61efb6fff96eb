"""``cdn_housekeeping``: what leaves the catalog leaves the CDN, per manufacturer.

Thin: the safety gate (the vendor's latest ``vendor_products`` checks), then one
call of ``steps/housekeeping.py`` over the CDN chain, and what it won as metadata.
The run queue's one-run-per-partition limit (``deploy/run-queue.yaml``) keeps it
from running beside the same manufacturer's vendor run, so the two never write
that manufacturer's ledgers at once.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Config,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster._core.event_api import PartitionKeyFilter  # the check history's partition filter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from pydantic import Field

from image_assets.cdn.base import CdnError
from image_assets.cdn.cloudinary import CloudinaryCdn, quota_percentages
from image_assets.cdn.retention import DEFAULT_MAX_SHARE
from image_assets.defs.resources import CdnResource, StorageResource, VendorRegistryResource
from image_assets.defs.settings import rendition_config
from image_assets.defs.vendors.checks import checks as vendor_checks
from image_assets.defs.vendors.partitions import manufacturer_partitions
from image_assets.layout import kits_csv_key
from image_assets.steps.housekeeping import Housekeeping, housekeep, retire_old_renditions

GROUP = "housekeeping"
VENDOR_PRODUCTS = AssetKey("vendor_products")


class HousekeepingConfig(Config):
    dry_run: bool = Field(default=False, description="only list what would be deleted")
    max_share: float = Field(
        default=DEFAULT_MAX_SHARE,
        gt=0,
        le=1,
        description="the most of a vendor's assets on one backend one run may delete; "
        "more than the default is a confirmation that the catalogue really shrank",
    )


def unsafe_reason(instance: DagsterInstance, manufacturer: str) -> str | None:
    """Why deleting for ``manufacturer`` is not safe now, or None: the latest
    evaluation of every ``vendor_products`` check for its partition must have passed
    (the breakage check covers a count drop past ``max_count_drop``); one still
    planned (a run in flight, or one that died) is not a pass."""
    keys = [key for check in vendor_checks for key in check.check_keys]
    keys = [key for key in keys if key.asset_key == VENDOR_PRODUCTS]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        keys, partition_filter=PartitionKeyFilter(key=manufacturer)
    )
    failed = sorted(
        key.name
        for key, record in latest.items()
        if record.status == AssetCheckExecutionRecordStatus.FAILED
    )
    if failed:
        return (
            f"the latest vendor_products of {manufacturer} failed {', '.join(failed)}: "
            "a broken scraper must not delete a vendor's images"
        )
    pending = sorted(
        key.name
        for key, record in latest.items()
        if record.status == AssetCheckExecutionRecordStatus.PLANNED
    )
    if pending:
        return f"the checks {', '.join(pending)} of {manufacturer} have not finished"
    return None


@asset(
    partitions_def=manufacturer_partitions,
    group_name=GROUP,
    kinds={"cdn"},
    deps=[AssetKey("kits_csv")],
    description="Deletes from the CDN what no current kits CSV references once it has "
    "been unreferenced for the vendor's retention_days (30); see steps/housekeeping.py.",
)
def cdn_housekeeping(
    context: AssetExecutionContext,
    config: HousekeepingConfig,
    cdn: CdnResource,
    storage: StorageResource,
    registry: VendorRegistryResource,
) -> MaterializeResult:
    manufacturer = context.partition_key
    vendor = registry.load().get(manufacturer)
    grace = timedelta(days=vendor.retention_days)
    reason = unsafe_reason(context.instance, manufacturer)
    raw = storage.raw()
    if reason is None and not raw.exists(kits_csv_key(manufacturer)):
        reason = f"{manufacturer} has no kits CSV yet: what it references is unknown"
    if reason is not None:
        context.log.warning(f"Nothing deleted: {reason}")
        return MaterializeResult(
            metadata={"skipped": reason, "assets_deleted": 0, "bytes_freed": 0}
        )
    backends, warnings = cdn.chain()
    for warning in warnings:
        context.log.warning(warning)
    result = housekeep(
        manufacturer,
        backends,
        storage.images(),
        raw,
        datetime.now(UTC).date(),
        grace=grace,
        max_share=config.max_share,
        dry_run=config.dry_run,
        say=context.log.info,
    )
    metadata = housekeeping_metadata(result)
    cloudinary = next((b for b in backends if isinstance(b, CloudinaryCdn)), None)
    if cloudinary is not None and not config.dry_run:
        try:
            usage = cloudinary.usage()
            metadata["cloudinary_storage_bytes"] = int((usage.get("storage") or {}).get("usage", 0))
            metadata |= {f"quota_{k}_percent": v for k, v in quota_percentages(usage).items()}
        except CdnError as exc:
            context.log.warning(f"Cloudinary usage unavailable: {exc}")
    return MaterializeResult(metadata=metadata)


def housekeeping_metadata(result: Housekeeping) -> dict[str, Any]:
    rows = [
        "| storage | held | held bytes | retired, waiting | due | deleted | bytes freed | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in result.backends:
        note = b.stopped or b.listing_error or (f"{len(b.failed)} failed" if b.failed else "")
        deleted = len(b.would_delete) if result.dry_run else len(b.deleted)
        rows.append(
            f"| {b.storage} | {b.held} | {b.held_bytes} | {b.retired_waiting} | {b.due} "
            f"| {deleted} | {b.bytes_freed} | {note} |"
        )
    metadata: dict[str, Any] = {
        "dry_run": result.dry_run,
        "assets_deleted": result.assets_deleted,
        "bytes_freed": result.bytes_freed,
        "retired_waiting": result.retired_waiting,
        "due_left": result.due_left,
        "backends": MetadataValue.md("\n".join(rows)),
    }
    if result.dry_run:
        metadata["would_delete"] = sum(len(b.would_delete) for b in result.backends)
        metadata["would_free_bytes"] = sum(n for b in result.backends for _, n in b.would_delete)
    return metadata


IMAGE_RENDITIONS = AssetKey("image_renditions")
CODE_VERSION_TAG = "dagster/code_version"


def not_rerendered(instance: DagsterInstance, current: str) -> list[str]:
    """Manufacturers whose latest ``image_renditions`` was made under another rendition
    config (partitions never materialized hold no renditions and do not count)."""
    behind = []
    for key in manufacturer_partitions.get_partition_keys():
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=IMAGE_RENDITIONS, asset_partitions=[key]), limit=1
        ).records
        if not records:
            continue
        materialization = records[0].asset_materialization
        tags = materialization.tags if materialization is not None else None
        if (tags or {}).get(CODE_VERSION_TAG) != current:
            behind.append(key)
    return behind


@asset(
    group_name=GROUP,
    kinds={"pillow"},
    deps=[IMAGE_RENDITIONS],
    description="Deletes renditions the private store holds under an earlier rendition "
    "config or renderer, once every manufacturer has re-rendered and the grace has passed.",
)
def renditions_housekeeping(
    context: AssetExecutionContext, config: HousekeepingConfig, storage: StorageResource
) -> MaterializeResult:
    current = rendition_config().fingerprint()
    behind = not_rerendered(context.instance, current)
    if behind:
        reason = (
            f"{', '.join(behind)} not re-rendered under the current config ({current}) yet: "
            "their renditions may still be in use"
        )
        context.log.warning(f"Nothing deleted: {reason}")
        return MaterializeResult(metadata={"skipped": reason, "prefixes_deleted": 0})
    result = retire_old_renditions(
        storage.images(),
        storage.raw(),
        current,
        datetime.now(UTC).date(),
        dry_run=config.dry_run,
        say=context.log.info,
    )
    return MaterializeResult(
        metadata={
            "dry_run": config.dry_run,
            "config_fingerprint": current,
            "prefixes": result.prefixes,
            "stale_prefixes": result.stale,
            "retired_waiting": result.retired_waiting,
            "prefixes_deleted": 0 if config.dry_run else len(result.deleted),
            "files_deleted": result.files_deleted,
            "bytes_freed": result.bytes_freed,
        }
    )


assets = [cdn_housekeeping, renditions_housekeeping]
