"""Partitions: one per manufacturer in the vendor registry (its keys, in order)."""

from __future__ import annotations

from dagster import StaticPartitionsDefinition

from image_assets.scraping.registry import registry_keys

manufacturer_partitions = StaticPartitionsDefinition(registry_keys())
