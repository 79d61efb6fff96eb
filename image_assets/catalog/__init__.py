"""Catalog records, the kits CSV contract, and the DuckDB catalog."""
