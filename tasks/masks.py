"""Prefect tasks for the masks stage: generate masks with CLIPSeg, or check user-provided masks."""

from __future__ import annotations

import json

from prefect import get_run_logger
from prefect.artifacts import create_image_artifact, create_markdown_artifact, create_table_artifact

from dreamcore.config import RunConfig
from dreamcore.data.ingest import read_manifest
from dreamcore.masks import (
    MaskCheckError,
    MaskNameClashError,
    NothingDetectedError,
    check_user_masks,
    generate_masks,
)
from dreamcore.masks.runner import MasksPlan
from dreamcore.storage import ArtifactStore, StageResult
from tasks.artifacts import artifact_key, linkable
from tasks.stage_task import stage_task

_NOT_WORTH_RETRYING = (MaskCheckError, MaskNameClashError, NothingDetectedError, FileNotFoundError, ValueError)


_RETRIES = {"bad_input": _NOT_WORTH_RETRYING, "retries": 2, "retry_delay_seconds": 5}


@stage_task("masks", name="masks", task_run_name="masks-{plan.image.id}", **_RETRIES)
def generate_masks_task(plan: MasksPlan, config: RunConfig, storage_root: str) -> StageResult:
    """Generate a mask for every accepted image of the plan's image dataset (config.training.mask_generation)."""
    store = ArtifactStore(storage_root)
    image = plan.image
    outcome = generate_masks(store, config, image, read_manifest(store, plan.ingested), fingerprint=plan.fingerprint,
                             key=plan.key)
    result = outcome.result
    get_run_logger().info(
        "dataset %r: %d masks (%d computed in this run), %d with nothing detected",
        image.id,
        result.counts["masks"],
        outcome.generated,
        result.counts["undetected"],
    )
    snippet = json.dumps(store.read_json(result.details["snippet"]), indent=2)
    _publish(store, image.id, result, f"Dataset config entry for the generated masks:\n\n```json\n{snippet}\n```")
    return result


@stage_task("masks", name="mask-check", task_run_name="mask-check-{plan.image.id}", **_RETRIES)
def check_masks_task(plan: MasksPlan, storage_root: str) -> StageResult:
    """Check the user's masks of the plan's image dataset: one per image, its size, readable as grayscale."""
    store = ArtifactStore(storage_root)
    image, masks = plan.image, plan.masks
    result = check_user_masks(store, image, read_manifest(store, plan.ingested), masks, key=plan.key)
    get_run_logger().info("dataset %r: %d user masks checked", image.id, result.counts["masks"])
    _publish(store, image.id, result, f"User masks from `{masks.id}` ({masks.instance_data_dir}) passed the check.")
    return result


def _publish(store: ArtifactStore, dataset_id: str, result: StageResult, note: str) -> None:
    """Coverage table, preview grid and a summary as Prefect artifacts."""
    table = store.read_json(result.details["report"])
    create_table_artifact(
        key=artifact_key("masks", dataset_id),
        table=[{k: row.get(k, "") for k in ("path", "mask", "coverage", "detected", "flag")} for row in table],
        description=f"Mask coverage (fraction trained) per image of `{dataset_id}`.",
    )
    preview_uri = linkable(store.uri(result.details["preview"]))
    create_image_artifact(
        image_url=preview_uri, key=artifact_key("masks-preview", dataset_id), description="image | mask | overlay"
    )
    flagged = "".join(f"\n- `{path}`: nothing detected, all-white mask" for path in result.details["undetected"])
    create_markdown_artifact(
        key=artifact_key("masks-summary", dataset_id),
        markdown=f"### Masks of `{dataset_id}`\n\n{result.counts['masks']} masks in {result.details['data_uri']}."
        f"{flagged}\n\nPreview: {preview_uri}\n\n{note}\n",
    )
