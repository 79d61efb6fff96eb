"""Upload assets on the dynamic ``uploads`` partitions (one per upload id), processed in
batches: one run materializes many uploads, each keeping its own partition status.

``uploaded_images`` examines each claimed file (validated by content; accepted
files kept privately under a unique name, refused ones moved to the rejected
area with their reason); ``upload_renditions`` makes the configured renditions
of the accepted ones in one worker pool and writes their audit rows. A bad file
is a rejected upload, never a failed run. The lifecycle lives in
``uploads/lifecycle.py``; these assets only call it.
"""

import warnings
from collections.abc import Iterable
from typing import Any

from dagster import AssetExecutionContext, BackfillPolicy, Failure, Output, asset

from image_assets.catalog.tags_table import save_upload_tag_row
from image_assets.defs.metadata import counts_table
from image_assets.defs.resources import RenditionsResource, StorageResource, TaggerResource
from image_assets.defs.uploads.partitions import uploads_partitions
from image_assets.defs.uploads.resources import UploadsResource
from image_assets.records import TagRow
from image_assets.steps.tags import tag_images
from image_assets.storage.leases import new_owner
from image_assets.uploads.lifecycle import ProcessOptions, UploadError, examine, render

# single-run backfill policies are what batch uploads; Dagster 1.13 still marks the
# parameter beta, and says so once per process: silenced here on purpose
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")

GROUP = "uploads"
UPLOADS: dict[str, Any] = {
    "partitions_def": uploads_partitions,
    "group_name": GROUP,
    "io_manager_key": "partitioned_json_io_manager",
    # a sensor run (or a backfill from the UI) covers many uploads in one process
    "backfill_policy": BackfillPolicy.single_run(),
}


def _counts(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _options(
    context: AssetExecutionContext,
    uploads: UploadsResource,
    renditions_config: RenditionsResource,
) -> ProcessOptions:
    return ProcessOptions(
        config=renditions_config.config(),
        incomplete_grace_seconds=uploads.incomplete_grace_seconds,
        workers=renditions_config.workers or None,
        lease_seconds=uploads.lease_seconds,
        owner=new_owner(f"run {context.run.run_id[:8]}"),
    )


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="Uploaded files, validated by content and kept privately under unique names "
    "(or rejected with a reason).",
)
def uploaded_images(
    context: AssetExecutionContext,
    uploads: UploadsResource,
    storage: StorageResource,
    renditions_config: RenditionsResource,
) -> Output[dict]:
    options = _options(context, uploads, renditions_config)
    try:
        manifests = examine(uploads.stores(storage), context.partition_keys, options)
    except UploadError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    for upload_id, manifest in manifests.items():
        record = manifest.record
        if record.status == "rejected":
            context.log.warning(f"Rejected {upload_id} ({record.object_key}): {record.reason}")
        elif record.status == "waiting":
            context.log.info(f"{upload_id} ({record.object_key}) waits: it may still be written")
    statuses = [m.record.status for m in manifests.values()]
    return Output(
        {k: m.record.model_dump(mode="json") for k, m in manifests.items()},
        metadata={
            "uploads": len(manifests),
            "statuses": counts_table(_counts(statuses), "status", "uploads"),
        },
    )


@asset(
    **UPLOADS,
    kinds={"pillow"},
    description="Renditions of each accepted upload (200x200 thumbnail and the rest, one "
    "worker pool for the batch) and its audit row.",
)
def upload_renditions(
    context: AssetExecutionContext,
    uploads: UploadsResource,
    storage: StorageResource,
    renditions_config: RenditionsResource,
    tagger: TaggerResource,
    uploaded_images: dict,
) -> Output[dict]:
    options = _options(context, uploads, renditions_config)
    try:
        manifests = render(
            uploads.stores(storage), list(uploaded_images), options, say=context.log.info
        )
    except UploadError as exc:
        raise Failure(str(exc), allow_retries=False) from None
    values = {
        upload_id: {
            "upload": m.record.model_dump(mode="json"),
            "renditions": m.renditions.model_dump(mode="json") if m.renditions else None,
        }
        for upload_id, m in manifests.items()
    }
    made = sum(len(m.renditions.renditions) for m in manifests.values() if m.renditions)
    stores = uploads.stores(storage)
    rendered = [m.renditions for m in manifests.values() if m.renditions is not None]
    rows, tag_stats = tag_images(
        None, rendered, stores.private, tagger.tagger(), context.log.warning
    )
    rows += [  # refused uploads keep a row too, with why
        TagRow(key=upload_id, source="upload", status="failed", reason=m.record.reason or "refused")
        for upload_id, m in manifests.items()
        if m.renditions is None and m.record.status == "rejected"
    ]
    for row in rows:
        save_upload_tag_row(stores.raw, row)
    return Output(
        values,
        metadata={
            "uploads": len(values),
            "rendition_files": made,
            "images_tagged": tag_stats.tagged,
            "statuses": counts_table(
                _counts([m.record.status for m in manifests.values()]), "status", "uploads"
            ),
        },
    )


assets = [uploaded_images, upload_renditions]
