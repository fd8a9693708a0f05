"""Flow: masked-loss masks. Generates mask_generation's masks and checks user-provided mask datasets."""

from __future__ import annotations

from collections.abc import MutableMapping

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.data.ingest import IngestPlan, planned_once
from dreamcore.masks import masked_dataset, user_mask_pairs
from dreamcore.masks.runner import plan_masks
from dreamcore.storage import ArtifactStore, StageResult
from tasks.ingest import ingest
from tasks.masks import check_masks_task, generate_masks_task
from tasks.results import result_storage_for


def masks_tasks(config: RunConfig, plans: MutableMapping[str, IngestPlan] | None = None) -> dict[str, StageResult]:
    """The masks stage's tasks, to call inside any flow (this one, or the dreambooth flow). `plans`: the run's
    ingest plans by dataset id, which this step adds its image datasets' to (the ingest step reuses them)."""
    plans = {} if plans is None else plans
    root = config.training.resolved_storage_root
    storage = result_storage_for(root)
    ingest_task = ingest.with_options(result_storage=storage)
    store = ArtifactStore(root)
    results = {}
    # Each image dataset's masks are planned (keyed) here, once, after its ingest.
    options = config.training.mask_generation
    if options is not None:
        image = masked_dataset(config, options)
        generate = generate_masks_task.with_options(result_storage=storage)
        ingested = ingest_task(planned_once(image, plans), root)
        results[image.id] = generate(plan_masks(store, image, ingested, options), config, root)
    for image, masks in user_mask_pairs(config):
        check = check_masks_task.with_options(result_storage=storage)
        ingested = ingest_task(planned_once(image, plans), root)
        results[image.id] = check(plan_masks(store, image, ingested, masks), root)
    return results


@flow(name="masks", log_prints=True)
def masks_flow(config: RunConfig) -> dict[str, StageResult]:
    """Masks for every image dataset that has or needs them; results by image dataset id."""
    return masks_tasks(config)
