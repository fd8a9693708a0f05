"""Flow: the whole Dreambooth pipeline. Every stage skips work it has already committed."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.masks import masked_dataset, with_generated_masks
from dreamcore.regularise import with_class_images
from flows.cache import cache_tasks
from flows.evaluate import evaluate_tasks
from flows.ingest import ingest_tasks
from flows.masks import masks_tasks
from flows.refine import refine_tasks
from flows.regularise import class_images_tasks
from flows.train import train_tasks


@flow(name="dreambooth", log_prints=True)
def dreambooth(config: RunConfig) -> dict:
    """masks → class images → ingest → caches → train → evaluate → refine (when a refiner is set).

    Stages run as tasks of this one flow rather than as subflows: each subflow costs about a
    second of Prefect bookkeeping, which is most of a warm (all Cached) rerun.
    """
    masks = masks_tasks(config)
    if config.training.mask_generation is not None:
        config = with_generated_masks(config, masks[masked_dataset(config, config.training.mask_generation).id])
    class_images = class_images_tasks(config)
    if class_images is not None:
        config = with_class_images(config, class_images)
    ingested = ingest_tasks(config)
    caches = cache_tasks(config, ingested)
    trained = train_tasks(config, caches["vae_cache"], caches["text_cache"])
    evaluated = evaluate_tasks(config, trained)
    refined = refine_tasks(config, trained) if config.training.refiner_model_name_or_path else None
    return _summary(
        ingest=ingested,
        masks=masks,
        class_images=class_images,
        vae_cache=caches["vae_cache"],
        text_cache=caches["text_cache"],
        train=trained,
        evaluate=evaluated,
        refine=refined,
    )


def _summary(**stages) -> dict:
    """JSON-ready results: {stage: StageResult dict, or {dataset id: StageResult dict}}."""

    def dump(value):
        if isinstance(value, dict):
            return {key: dump(item) for key, item in value.items()}
        return None if value is None else value.model_dump(mode="json")

    return {stage: dump(value) for stage, value in stages.items()}
