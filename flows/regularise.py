"""Flow: class (regularisation) images drawn by the base model."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.regularise import class_image_plan
from dreamcore.storage import StageResult
from tasks.regularise import class_images_task
from tasks.results import result_storage_for


def class_images_tasks(config: RunConfig) -> StageResult | None:
    """The class images stage's tasks, to call inside any flow (this one, or the dreambooth flow)."""
    if config.training.class_images is None:
        return None
    root = config.training.resolved_storage_root
    task = class_images_task.with_options(result_storage=result_storage_for(root))
    return task(class_image_plan(config), config, root)  # planned (keyed) here, once


@flow(name="class-images", log_prints=True)
def class_images_flow(config: RunConfig) -> StageResult | None:
    """Generate config.training.class_images (None when it is not set)."""
    return class_images_tasks(config)
