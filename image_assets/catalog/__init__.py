"""The catalog: the kits CSV contract, data-quality rules, the audit rows and the DuckDB tables."""
