"""Flow: masked-loss masks. Generates mask_generation's masks and checks user-provided mask datasets."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.masks import masked_dataset, user_mask_pairs
from dreamcore.storage import StageResult
from tasks.ingest import ingest
from tasks.masks import check_masks_task, generate_masks_task
from tasks.results import result_storage_for


def masks_tasks(config: RunConfig) -> dict[str, StageResult]:
    """The masks stage's tasks, to call inside any flow (this one, or the dreambooth flow)."""
    root = config.training.resolved_storage_root
    storage = result_storage_for(root)
    ingest_task = ingest.with_options(result_storage=storage)
    results = {}
    if config.training.mask_generation is not None:
        image = masked_dataset(config, config.training.mask_generation)
        generate = generate_masks_task.with_options(result_storage=storage)
        results[image.id] = generate(config, image, ingest_task(image, root), root)
    for image, masks in user_mask_pairs(config):
        check = check_masks_task.with_options(result_storage=storage)
        results[image.id] = check(image, ingest_task(image, root), masks, root)
    return results


@flow(name="masks", log_prints=True)
def masks_flow(config: RunConfig) -> dict[str, StageResult]:
    """Masks for every image dataset that has or needs them; results by image dataset id."""
    return masks_tasks(config)
