"""The Dagster shell: assets, checks, jobs and resources that call the plain-Python core."""
