"""Prefect tasks of the retrain flow: what changed since the last run, and recording a finished run."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from dreamcore.config import RunConfig
from dreamcore.retrain import announce, detect_changes, promote_or_reject
from dreamcore.retrain.history import history_table
from dreamcore.storage import ArtifactStore
from tasks.artifacts import artifact_key


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


@task(name="promote-or-reject", task_run_name="promote-or-reject", cache_policy=None)
def promote_or_reject_run(config: RunConfig, run_name: str, results: dict) -> dict:
    """Judge the finished run with retrain_guard: promoted, it becomes the current model (the baseline of the
    next retrain); rejected, the current model stays. Either way the decision joins the history artifact."""
    store = ArtifactStore(config.training.resolved_storage_root)
    verdict, history = promote_or_reject(config, store, run_name, results, str(flow_run.get_id() or ""))
    decision = "promoted" if verdict.promoted else "rejected"
    logger = get_run_logger()
    (logger.info if verdict.promoted else logger.warning)("new %r run %s: %s", run_name, decision, verdict.reason)
    metrics = sorted(config.training.retrain_guard or {"eval_loss": None, "clip_mean": None})
    create_table_artifact(key=artifact_key("retrain-history", run_name), table=history_table(history, metrics),
                          description=f"Runs of `{run_name}` judged by retrain_guard, newest first: promoted "
                          "ones became the current model, rejected ones left it as it was.")
    announce(config, run_name, verdict)
    return verdict.as_dict()
