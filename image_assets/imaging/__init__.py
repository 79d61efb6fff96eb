"""Imaging: safe decoding, normalization and renditions (Pillow; no dagster)."""
