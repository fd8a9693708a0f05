"""The stage keys of existing configs stay what they were: every stage"s key for a few representative configs
on the demo"s tiny models, pinned to the values the code gave before each stage got a typed plan.

Upstream results are stand-ins with fixed digests (the keys hash digests, never paths of upstream outputs), so
this pins how each stage keys its own fields, model fingerprints and upstream digests; the ingest keys are
those of the demo"s files. A changed value here means committed stages on users" disks would be redone.
"""

from __future__ import annotations

import pytest

from dreamcore.config import RunConfig, load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import StageResult

PIN_ROOT = "/pinned/artifacts"  # the cache location is in the cache keys: one fixed root, not the test"s tmp path


def _result(stage: str, name: str) -> StageResult:
    return StageResult(stage=stage, key=f"key-{name}", output_uri=f"file:///{name}", digest=f"digest-{name}")


def _demo(folder, family: str | None = None, **training) -> RunConfig:
    config = load_run_config(write_demo_project(folder, family))
    values = config.training.model_dump() | {"storage_root": PIN_ROOT} | training
    return config.model_copy(update={"training": config.training.model_validate(values)})


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, RunConfig]:
    sd1 = tmp_path_factory.mktemp("sd1")
    flux = tmp_path_factory.mktemp("flux")
    models = sd1 / "demo" / "models"
    base = _demo(sd1 / "demo")
    return {
        "sd1-demo": base,  # subject + user masks + a regularisation dataset, CLIP evaluation, held-out eval rows
        "sd1-generating": _demo(
            sd1 / "demo",
            mask_generation={"dataset": "subject", "prompt": "toy", "model": str(models / "clipseg"),
                             "conditioning_dataset": "subject-masks"},
            class_images={"prompt": "a photo of a toy", "count": 2, "resolutions": [64], "num_inference_steps": 2,
                          "batch_size": 2, "dataset": "regularisation"},
            lora_rank=8, snr_gamma=5.0, caption_dropout_probability=0.1,
        ),
        "sdxl-refiner": _demo(
            sd1 / "demo",
            pretrained_model_name_or_path=str(models / "sdxl"), model_family="sdxl",
            refiner_model_name_or_path=str(models / "sdxl-refiner"), refiner_training_strength=0.4,
        ),
        "flux-demo": _demo(flux / "demo", "flux", flux_guidance_value=3.5),
    }


def stage_keys(config: RunConfig) -> dict[str, str]:
    """Every stage key of a config, upstream results standing in with fixed digests."""
    from dreamcore.cache.stages import text_cache_plan, vae_cache_plans
    from dreamcore.data.ingest import ingest_key, scan_dataset
    from dreamcore.evaluate.eval_set import EvalRows
    from dreamcore.evaluate.stage import plan_evaluation
    from dreamcore.masks import masks_key, user_masks_key
    from dreamcore.masks.clipseg import clipseg_fingerprint
    from dreamcore.pipeline import CacheResults, plan_training_on_caches
    from dreamcore.refine.stage import plan_refine
    from dreamcore.regularise import class_image_plan
    from dreamcore.tokens import TokenSearchOptions, plan_tokens

    training = config.training
    keys = {f"ingest/{spec.id}": ingest_key(scan_dataset(spec)) for spec in config.image_datasets}
    ingests = {spec.id: _result("ingest", spec.id) for spec in config.image_datasets}
    rows = [{"path": f"{i}.png", "digest": f"image-{i}", "status": "ok"} for i in range(3)]
    if training.mask_generation is not None:
        options = training.mask_generation
        keys["masks/generated"] = masks_key(options, rows, clipseg_fingerprint(options.model))
    else:
        keys["masks/user"] = user_masks_key(config.dataset("subject"), rows, config.dataset("subject-masks"))
    if training.class_images is not None:
        keys["class_images"] = class_image_plan(config).key
    vae = {}
    for dataset_id, plan in vae_cache_plans(config, ingests).items():
        keys[f"vae_cache/{dataset_id}"] = plan.key
        vae[dataset_id] = _result("vae_cache", dataset_id)
    keys["text_cache"] = text_cache_plan(config, ingests).key
    text = _result("text_cache", "text")
    keys["train"] = plan_training_on_caches(config, CacheResults(vae_cache=vae, text_cache=text)).key
    train = _result("train", "train")
    keys["evaluate"] = plan_evaluation(config, train, EvalRows(digest="digest-eval-set")).key
    keys["evaluate/no-eval-set"] = plan_evaluation(config, train, EvalRows()).key
    if training.refiner_model_name_or_path:
        keys["refine"] = plan_refine(config, train).key
    keys["tokens"] = plan_tokens(training.pretrained_model_name_or_path, TokenSearchOptions()).key
    return keys


PINNED: dict[str, dict[str, str]] = {
    "sd1-demo": {
        "ingest/subject": "d43f4895d757e6256bcb",
        "ingest/subject-masks": "bfb0c86a4d22fa952ccf",
        "ingest/regularisation": "bad9f55cec5b5f4f9b3b",
        "masks/user": "67e5355cc2c0d571278e",
        "vae_cache/subject": "7404480b837ce28980c8",
        "vae_cache/regularisation": "8c8e35389820351f6c13",
        "text_cache": "34e21fb1e61427ccb316",
        "train": "2cb1c4398dcaac106d7d",
        "evaluate": "78cc9dd9cc1f58792743",
        "evaluate/no-eval-set": "ffef14f727d3b1249c02",
        "tokens": "d7de6ddca1eeb5ea3a8c",
    },
    "sd1-generating": {
        "ingest/subject": "d43f4895d757e6256bcb",
        "ingest/subject-masks": "bfb0c86a4d22fa952ccf",
        "ingest/regularisation": "bad9f55cec5b5f4f9b3b",
        "masks/generated": "bed3be81dbf22ce6eecd",
        "class_images": "a506926da42738d8fb84",
        "vae_cache/subject": "7404480b837ce28980c8",
        "vae_cache/regularisation": "8c8e35389820351f6c13",
        "text_cache": "1248fa49c2abdbfc01ba",
        "train": "7ffa9f5a1cb30bc7b001",
        "evaluate": "78cc9dd9cc1f58792743",
        "evaluate/no-eval-set": "ffef14f727d3b1249c02",
        "tokens": "d7de6ddca1eeb5ea3a8c",
    },
    "sdxl-refiner": {
        "ingest/subject": "d43f4895d757e6256bcb",
        "ingest/subject-masks": "bfb0c86a4d22fa952ccf",
        "ingest/regularisation": "bad9f55cec5b5f4f9b3b",
        "masks/user": "67e5355cc2c0d571278e",
        "vae_cache/subject": "57cc96f12eaaedb1d71c",
        "vae_cache/regularisation": "2d7a5c4184e1f89b8145",
        "text_cache": "406b23baf5e70eb83abd",
        "train": "99d5960599f08786c1e7",
        "evaluate": "f896676e4c1c72814074",
        "evaluate/no-eval-set": "e09eae20e13d3bbf84fe",
        "refine": "3d5780300eaa8e2ee2ad",
        "tokens": "67c66548d4acaf8070ca",
    },
    "flux-demo": {
        "ingest/subject": "d43f4895d757e6256bcb",
        "ingest/subject-masks": "bfb0c86a4d22fa952ccf",
        "ingest/regularisation": "bad9f55cec5b5f4f9b3b",
        "masks/user": "67e5355cc2c0d571278e",
        "vae_cache/subject": "0ba35e3903fffb440407",
        "vae_cache/regularisation": "9a61e284b17cb58fcbdc",
        "text_cache": "693fc624e7bb1f7ef523",
        "train": "27af0d6fa02ebc235197",
        "evaluate": "e9cdb7c655581fdb66f8",
        "evaluate/no-eval-set": "5b0a545d285de0f4a773",
        "tokens": "4fe0868e928db6da3982",
    },
}


@pytest.mark.parametrize("name", ["sd1-demo", "sd1-generating", "sdxl-refiner", "flux-demo"])
def test_stage_keys_of_existing_configs_stay_the_same(configs, name) -> None:
    assert stage_keys(configs[name]) == PINNED[name]
