"""Prefect task wrappers around dreamcore stages: cache keys, result storage, retries, artifacts."""
