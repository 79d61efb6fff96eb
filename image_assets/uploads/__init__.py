"""Uploads: files users drop in an incoming folder or bucket, and their lifecycle
(accept or reject, render, activate, expire). No dagster here."""
