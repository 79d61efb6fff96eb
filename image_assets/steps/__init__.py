"""Pipeline steps: plain functions that combine the core modules; each asset calls one.

They take their collaborators (HTTP client, stores, CDN) as arguments and
report progress through a callback, so they run the same under Dagster, the
CLI and the tests.
"""
