"""Generated masks and class images go through ingest, the caches and two training steps."""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.masks import masked_dataset, with_generated_masks
from dreamcore.masks.runner import run_masks
from dreamcore.regularise import generate_class_images, with_class_images
from dreamcore.storage import ArtifactStore, StageResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stage_result(values: dict) -> StageResult:
    return StageResult.model_validate({k: v for k, v in values.items() if k in StageResult.model_fields})


def test_generated_datasets_ingest_cache_and_train_as_masks_and_regularisation(tiny_models, tmp_path) -> None:
    from dreamcore.cache.batches import open_batch_source
    from dreamcore.cache.stages import run_cache
    from dreamcore.pipeline import run_ingest
    from dreamcore.train.plan import plan_training
    from dreamcore.train.stage import train_stage

    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": str(tiny_models["sd"]),
                "model_family": "sd1x",
                "mixed_precision": "no",
                "storage_root": str(tmp_path / "artifacts"),
                "output_dir": str(tmp_path / "output"),
                "max_train_steps": 2,
                "train_batch_size": 2,
                "lora_rank": 4,
                "mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"])},
                "class_images": {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2},
            },
            "datasets": [
                {
                    "id": "subject",
                    "instance_data_dir": str(demo.images_dir),
                    "caption_strategy": "textfile",
                    "resolution": 64,
                    "crop": True,
                },
                {"id": "text-embeds", "dataset_type": "text_embeds", "default": True},
            ],
        }
    )
    store = ArtifactStore(config.training.resolved_storage_root)
    masks = stage_result(run_masks(config, store)[masked_dataset(config, config.training.mask_generation).id])
    config = with_class_images(with_generated_masks(config, masks), generate_class_images(store, config).result)

    ingested = run_ingest(config, store)
    assert {k: v["counts"]["accepted"] for k, v in ingested.items()} == {
        "subject": 2,
        "subject-masks": 2,
        "regularisation": 2,
    }
    caches = run_cache(config, store)
    vae = {k: stage_result(v) for k, v in caches["vae_cache"].items()}
    text = stage_result(caches["text_cache"])
    batches = iter(open_batch_source(store, config, vae, text))
    seen = [next(batches) for _ in range(6)]
    assert any(bool(b.is_regularisation.any()) for b in seen)  # the class images are sampled as regularisation
    assert all(b.loss_mask is not None for b in seen if "subject" in b.dataset_ids)

    upstream = {k: v.digest for k, v in vae.items()} | {"text": text.digest}
    result = train_stage(plan_training(config, upstream), store, open_batch_source(store, config, vae, text), show_progress=False)
    assert result.counts["steps"] == 2
