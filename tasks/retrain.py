"""Prefect tasks of the retrain flow: what changed since the last run, and recording a finished run."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from dreamcore.config import RunConfig
from dreamcore.retrain import detect_changes, record_run
from dreamcore.storage import ArtifactStore


@task(name="detect-changes", task_run_name="detect-changes", cache_policy=None)
def find_changes(config: RunConfig, run_name: str) -> dict:
    """Diff every dataset against the last recorded run; never cached (the point is to look again)."""
    report = detect_changes(config, ArtifactStore(config.training.resolved_storage_root), run_name)
    summary = report.summary()
    get_run_logger().info("changes since the last %r run:\n%s", run_name, summary)
    create_markdown_artifact(
        key="retrain-changes", markdown=f"### Changes since the last `{run_name}` run\n\n```\n{summary}\n```"
    )
    return {
        "any": report.any,
        "summary": summary,
        "datasets": {
            d.dataset_id: {"added": d.added, "changed": d.changed, "removed": d.removed} for d in report.datasets
        },
    }


@task(name="record-run", task_run_name="record-run", cache_policy=None)
def remember_run(config: RunConfig, run_name: str, results: dict) -> str:
    """Store the finished run's stage results as the baseline of the next retrain."""
    return record_run(ArtifactStore(config.training.resolved_storage_root), run_name, results)
