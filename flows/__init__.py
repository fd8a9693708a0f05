"""Prefect flows: recipes that compose dreamcore stages."""
