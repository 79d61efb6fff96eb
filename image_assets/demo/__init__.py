"""Deterministic sample vendor sites and a tiny HTTP server for them (demo and tests)."""
