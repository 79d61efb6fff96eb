"""An IO manager that keeps asset outputs as JSON in the raw blob store.

Outputs are lists of records (see ``records.py``); JSON keeps them
readable and diffable, and the atomic blob-store write means a killed run
never leaves a half-written output for the next step to read.
"""

import json

from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from image_assets.defs.resources import StorageResource
from image_assets.layout import asset_state_key


class JsonBlobIOManager(ConfigurableIOManager):
    storage: ResourceDependency[StorageResource]

    def _key(self, context: InputContext | OutputContext) -> str:
        partition = context.asset_partition_key if context.has_asset_partitions else None
        return asset_state_key(context.asset_key.path, partition)

    def handle_output(self, context: OutputContext, obj: object) -> None:
        key = self._key(context)
        payload = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        self.storage.raw().put(key, payload, "application/json")
        context.add_output_metadata({"stored_at": key})

    def load_input(self, context: InputContext) -> object:
        return json.loads(self.storage.raw().get(self._key(context)))


class PartitionedJsonIOManager(ConfigurableIOManager):
    """For assets that materialize many partitions in one run (a single-run backfill
    policy): outputs are ``{partition_key: value}``, stored one JSON blob per partition,
    so each partition reads back alone and a re-run of one upload finds its own value."""

    storage: ResourceDependency[StorageResource]

    def handle_output(self, context: OutputContext, obj: dict) -> None:
        keys = list(context.asset_partition_keys)
        missing = sorted(set(keys) - set(obj))
        if missing:
            raise ValueError(f"no value for partitions {missing[:5]} of {context.asset_key}")
        raw = self.storage.raw()
        for partition in keys:
            key = asset_state_key(context.asset_key.path, partition)
            payload = json.dumps(obj[partition], sort_keys=True, separators=(",", ":")).encode()
            raw.put(key, payload, "application/json")
        context.add_output_metadata({"partitions_stored": len(keys)})

    def load_input(self, context: InputContext) -> dict:
        raw = self.storage.raw()
        return {
            partition: json.loads(raw.get(asset_state_key(context.asset_key.path, partition)))
            for partition in context.asset_partition_keys
        }
