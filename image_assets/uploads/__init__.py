"""Uploads: new images dropped in an incoming folder or bucket (no dagster here)."""
