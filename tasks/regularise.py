"""Prefect task for the class_images stage: progress artifact while drawing, sample grid after."""

from __future__ import annotations

import json

from prefect import get_run_logger
from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)

from dreamcore.config import RunConfig
from dreamcore.regularise import ClassImagePlan, generate_class_images
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import artifact_key, linkable
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (FileNotFoundError, ValueError)


# A retry resumes at the first missing image, so transient failures (CUDA OOM spikes, storage hiccups)
# cost only the batch in flight.
@stage_task("class_images", name="class-images", task_run_name="class-images-{plan.options.dataset}",
            bad_input=_NOT_WORTH_RETRYING, retries=2, retry_delay_seconds=10)
def class_images_task(plan: ClassImagePlan, config: RunConfig, storage_root: str) -> StageResult:
    """Generate (or finish generating) config.training.class_images, as planned."""
    logger = get_run_logger()
    store = ArtifactStore(storage_root)
    dataset_id = plan.options.dataset
    progress_id = create_progress_artifact(
        0.0, key=artifact_key("class-images-progress", dataset_id), description="class images drawn"
    )

    def on_progress(done: int, total: int) -> None:
        update_progress_artifact(progress_id, 100.0 * done / total)

    outcome = generate_class_images(store, config, on_progress, plan=plan)
    update_progress_artifact(progress_id, 100.0)
    result = outcome.result
    logger.info(
        "dataset %r: %d class images, %d generated in this run",
        dataset_id,
        result.counts["images"],
        len(outcome.generated),
    )
    samples = linkable(store.uri(result.details["samples"]))
    create_image_artifact(
        image_url=samples, key=artifact_key("class-images-samples", dataset_id), description="first class images"
    )
    snippet = json.dumps(store.read_json(result.details["snippet"]), indent=2)
    create_markdown_artifact(
        key=artifact_key("class-images", dataset_id),
        markdown=f"### Class images `{dataset_id}`\n\n{result.counts['images']} images in {result.details['data_uri']} "
        f"({len(outcome.generated)} drawn in this run). Samples: {samples}\n\n"
        f"Dataset config entry:\n\n```json\n{snippet}\n```\n",
    )
    return result
