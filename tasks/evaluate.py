"""Prefect task for the evaluate stage: summary table, validation grid, plots and the run report as artifacts."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from dreamcore.evaluate.stage import EVALUATE_STAGE, EvaluateDetails, EvaluatePlan, evaluate_planned
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import embedded_picture
from tasks.stage_task import stage_task
from tasks.secrets import with_secret_blocks_loaded

_NOT_WORTH_RETRYING = (ValueError, FileNotFoundError, KeyError)


@stage_task(EVALUATE_STAGE, name="evaluate", task_run_name="evaluate", bad_input=_NOT_WORTH_RETRYING, retries=1,
            retry_delay_seconds=10)
def evaluate(plan: EvaluatePlan, storage_root: str) -> StageResult:
    """Evaluate base vs checkpoints vs final weights of a committed training; publish the results."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    progress_id = create_progress_artifact(progress=0.0, key="evaluate-progress", description="weights evaluated")

    def on_progress(done: int, total: int) -> None:
        update_progress_artifact(progress_id, 100.0 * done / total)

    # in memory: the stored parameter keeps the block names
    plan = plan.model_copy(update={"config": with_secret_blocks_loaded(plan.config)})
    result, worked = evaluate_planned(plan, store, on_progress=on_progress)
    update_progress_artifact(progress_id, 100.0)
    logger.info("evaluated %d weights (%s); best by eval loss: %s; best by DINO: %s; report %s",
                result.counts["weights"], "now" if worked else "already committed",
                EvaluateDetails.of(result).best_by_eval_loss,
                EvaluateDetails.of(result).best_by_dino or "n/a (no protocol)", result.report_uri)
    publish(store, result)
    return result


def publish(store: ArtifactStore, result: StageResult) -> None:
    """Table, link, image and markdown artifacts of a committed evaluation."""
    details = EvaluateDetails.of(result)
    create_table_artifact(key="evaluate-summary", table=details.rows,
                          description="CLIP score (100 x cosine, clamped at 0) and stable eval loss per weights "
                          f"(eval samples: {details.eval_set}).")
    if details.best_by_dino is not None:
        from dreamcore.evaluate.subject_fidelity import METRIC_SENTENCES, METRICS

        table = [{k: row.get(k) for k in ("weights", "step", *(n for m in METRICS for n in (m, f"{m}_std")))}
                 for row in details.rows]
        create_table_artifact(key="evaluate-subject-fidelity", table=table,
                              description="DreamBooth protocol per weights (mean over prompts, *_std over prompts). "
                              + " ".join(METRIC_SENTENCES.values()))
    create_link_artifact(key="evaluate-report", link=result.report_uri.replace("report.md", "report.html"),
                         link_text="run report (HTML, self-contained)", description=f"Markdown: {result.report_uri}")
    sections = []
    for name, title in (("grid", "Validation images"), ("eval_loss_plot", "Eval loss per timestep"),
                        ("trend_plot", "Trend"), ("monitor_trend_plot", "During training"),
                        ("subject_trend_plot", "Subject fidelity over training"),
                        ("prompt_grid", "Best and worst protocol prompts")):
        picture = details.picture(name)
        if picture is not None:
            uri = store.uri(picture)
            create_image_artifact(image_url=uri, key=f"evaluate-{name.replace('_', '-')}", description=title)
            sections.append(f"### {title}\n\n{embedded_picture(store, picture)}\n\n{uri}\n")
    create_markdown_artifact(key="evaluate-pictures", markdown="\n".join(sections) or "no pictures",
                             description=f"Evaluation `{result.key}`")
