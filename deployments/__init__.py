"""Prefect deployments of the dreamcore flows: schedules, concurrency, work pools."""
