"""Dynamic partitions: one per upload, added by the upload sensors."""

from dagster import DynamicPartitionsDefinition

uploads_partitions = DynamicPartitionsDefinition(name="uploads")
