"""Prefect task for the refine stage: base vs refined side-by-side grid and a table of the pairs as artifacts."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from dreamcore.refine.stage import REFINE_STAGE, RefineDetails, RefinePlan, refine_planned
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import embedded_picture
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (ValueError, FileNotFoundError, KeyError)


@stage_task(REFINE_STAGE, name="refine", bad_input=_NOT_WORTH_RETRYING, retries=1, retry_delay_seconds=10)
def refine(plan: RefinePlan, storage_root: str) -> StageResult:
    """Draw the validation prompts with the trained base, refine them with the (tuned) refiner; publish the grid."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    progress_id = create_progress_artifact(progress=0.0, key="refine-progress", description="pairs drawn and refined")

    def on_progress(done: int, total: int) -> None:
        update_progress_artifact(progress_id, 100.0 * done / total)

    result, worked = refine_planned(plan, store, on_progress=on_progress)
    update_progress_artifact(progress_id, 100.0)
    details = RefineDetails.of(result)
    logger.info("%d base/refined pairs (%s, hand-off by %s); grid %s", result.counts["pairs"],
                "drawn now" if worked else "already committed", details.handoff, store.uri(details.grid))
    publish(store, result)
    return result


def publish(store: ArtifactStore, result: StageResult) -> None:
    """Table, image and markdown artifacts of a committed refine stage."""
    details = RefineDetails.of(result)
    rows = [{"prompt": p["prompt"], "seed": p["seed"], "base": store.uri(p["base"]), "refined": store.uri(p["refined"])}
            for p in details.pairs]
    lora = details.refiner_lora or "none (stock refiner)"
    create_table_artifact(key="refine-pairs", table=rows,
                          description=f"Base vs refined images (refiner {details.refiner_model}, LoRA {lora}, "
                          f"strength {details.strength}).")
    uri = store.uri(details.grid)
    create_image_artifact(image_url=uri, key="refine-grid", description="Base (top) vs refined (bottom)")
    picture = embedded_picture(store, details.grid, alt="grid")
    create_markdown_artifact(key="refine-grid-embedded", markdown=f"### Base vs refined\n\n{picture}\n\n{uri}\n",
                             description=f"Refine `{result.key}`")
