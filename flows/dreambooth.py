"""Flow: the whole Dreambooth pipeline. Every stage skips work it has already committed."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.masks import masked_dataset, with_generated_masks
from dreamcore.regularise import with_class_images
from flows.cache import cache_flow
from flows.evaluate import evaluate_flow
from flows.ingest import ingest_flow
from flows.masks import masks_flow
from flows.refine import refine_flow
from flows.regularise import class_images_flow
from flows.train import train_flow


@flow(name="dreambooth", log_prints=True)
def dreambooth(config: RunConfig) -> dict:
    """masks → class images → ingest → caches → train → evaluate → refine (when a refiner is set)."""
    masks = masks_flow(config)
    if config.training.mask_generation is not None:
        config = with_generated_masks(config, masks[masked_dataset(config, config.training.mask_generation).id])
    class_images = class_images_flow(config)
    if class_images is not None:
        config = with_class_images(config, class_images)
    ingested = ingest_flow(config)
    caches = cache_flow(config, ingested)
    trained = train_flow(config, caches["vae_cache"], caches["text_cache"])
    evaluated = evaluate_flow(config, trained)
    refined = refine_flow(config, trained) if config.training.refiner_model_name_or_path else None
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
