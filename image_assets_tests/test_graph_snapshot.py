"""A snapshot of the asset graph: any change to keys, deps, groups, partitions, checks,
code versions, automation or freshness is a visible diff in review.

After a deliberate change: ``.venv/bin/pytest image_assets_tests/test_graph_snapshot.py
--snapshot-update`` and commit the updated ``__snapshots__`` file with the change.
"""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition, StaticPartitionsDefinition

from image_assets.definitions import defs


def _partitions(partitions_def) -> object:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, StaticPartitionsDefinition):
        return {"static": partitions_def.get_partition_keys()}
    if isinstance(partitions_def, DynamicPartitionsDefinition):
        return {"dynamic": partitions_def.name}
    return type(partitions_def).__name__


def graph_shape() -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        node = graph.get(spec.key)
        condition = spec.automation_condition
        freshness = spec.freshness_policy
        checks = sorted(
            (graph.get(key).key.name, graph.get(key).blocking)
            for key in graph.asset_check_keys
            if key.asset_key == spec.key
        )
        assets[spec.key.to_user_string()] = {
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "group": spec.group_name,
            "partitions": _partitions(spec.partitions_def),
            "code_version": spec.code_version,
            "kinds": sorted(spec.kinds),
            "automation": (condition.get_label() or condition.name) if condition else None,
            "freshness": repr(freshness) if freshness else None,
            "checks": [{"name": name, "blocking": blocking} for name, blocking in checks],
            "backfill_policy": str(node.backfill_policy.policy_type.value)
            if node.backfill_policy
            else None,
        }
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.jobs or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_asset_graph_matches_the_snapshot(snapshot):
    assert graph_shape() == snapshot
