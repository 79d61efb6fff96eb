"""Checks on the clean catalog."""

import duckdb
from dagster import AssetCheckResult, asset_check

from image_assets.catalog.kits_csv import parse_csv
from image_assets.defs.catalog.assets import clean_kits
from image_assets.defs.resources import CatalogResource, StorageResource, VendorRegistryResource
from image_assets.layout import kits_csv_key
from image_assets.storage import BlobNotFound


@asset_check(
    asset=clean_kits,
    description="clean_kits has exactly one row per product of every manufacturer's kits CSV.",
)
def clean_kits_row_count(
    registry: VendorRegistryResource, storage: StorageResource, catalog: CatalogResource
) -> AssetCheckResult:
    raw = storage.raw()
    expected: dict[str, int] = {}
    for key in registry.load().keys:
        try:
            expected[key] = len(parse_csv(raw.get(kits_csv_key(key))))
        except BlobNotFound:
            continue
    with duckdb.connect(catalog.database, read_only=True) as con:
        actual = dict(
            con.execute("SELECT manufacturer, count(*) FROM clean_kits GROUP BY 1").fetchall()
        )
    actual = {k: v for k, v in actual.items() if v}
    expected = {k: v for k, v in expected.items() if v}
    passed = actual == expected
    return AssetCheckResult(
        passed=passed,
        description=(
            f"{sum(actual.values())} rows = sum over {len(expected)} kits CSVs"
            if passed
            else f"rows per manufacturer {actual} differ from the kits CSVs {expected}"
        ),
        metadata={"rows": sum(actual.values()), "expected_rows": sum(expected.values())},
    )


checks = [clean_kits_row_count]
