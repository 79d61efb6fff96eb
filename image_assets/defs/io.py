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
