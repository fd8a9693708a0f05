"""SD3 and Flux as base models of the generation stages: class images drawn by their stock pipelines (with their
own flow-matching scheduler), and CLIPSeg masks for a run on them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.drawing.pipelines import native_size
from dreamcore.pipeline import run_stage_locally
from dreamcore.regularise import class_image_plan, generate_class_images
from dreamcore.regularise.sampler import load_sampler, pipeline_fingerprint
from dreamcore.storage import ArtifactStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_config(tiny_models, tmp_path, kind: str, **class_options) -> RunConfig:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2, include_masks=False, include_class_images=0)
    options = {"prompt": "a photo of a toy", "count": 2, "num_inference_steps": 2, "batch_size": 2,
               "resolutions": [64]} | class_options
    training = {
        "pretrained_model_name_or_path": str(tiny_models[kind]),
        "mixed_precision": "no",
        "storage_root": str(tmp_path / "artifacts"),
        "class_images": options,
        "mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"]),
                            "conditioning_dataset": "subject-masks"},
    }
    datasets = [
        {"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile",
         "resolution": 64, "conditioning_data": "subject-masks"},
        {"id": "subject-masks", "dataset_type": "conditioning", "conditioning_type": "mask",
         "instance_data_dir": str(tmp_path / "masks"), "resolution": 64},
    ]
    return RunConfig.model_validate({"training": training, "datasets": datasets})


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_class_images_are_drawn_by_the_family_pipeline_and_reproduce(tiny_models, tmp_path, kind) -> None:
    config = run_config(tiny_models, tmp_path, kind)
    plan = class_image_plan(config)
    assert plan.options.scheduler == "default"  # the DDPM default (dpm++) cannot drive a flow-matching model
    assert pipeline_fingerprint(plan.model) != pipeline_fingerprint(str(tiny_models["sd"]))
    stores = ArtifactStore(str(tmp_path / "a")), ArtifactStore(str(tmp_path / "b"))
    results = [generate_class_images(store, config).result for store in stores]
    assert results[0].digest == results[1].digest and results[0].counts["images"] == 2

    def image(store, index):
        data = store.read_bytes(f"class_images/{results[0].key}/data/class_{index:06d}.png")
        return np.asarray(Image.open(io.BytesIO(data)))

    assert image(stores[0], 0).shape == (64, 64, 3)
    assert not np.array_equal(image(stores[0], 0), image(stores[0], 1))


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_a_ddpm_sampler_asked_for_a_flow_matching_model_names_the_key(tiny_models, tmp_path, kind) -> None:
    config = run_config(tiny_models, tmp_path, kind, scheduler="dpm++")
    plan = class_image_plan(config)
    with pytest.raises(ValueError, match=f"class_images.scheduler 'dpm\\+\\+'.*{kind}.*'default'"):
        load_sampler(plan.model, plan.options.scheduler, device="cpu")


def test_int8_quanto_class_images_quantise_the_transformer(tiny_models) -> None:
    pipe = load_sampler(str(tiny_models["flux"]), "default", "int8-quanto", device="cpu")
    assert any(type(m).__name__ == "QLinear" for m in pipe.transformer.modules())
    assert native_size(pipe) == (256, 256)  # Flux's transformer has no sample size: the pipeline's default


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_masks_stage_runs_for_a_run_on_the_family(tiny_models, tmp_path, kind) -> None:
    config = run_config(tiny_models, tmp_path, kind)
    first = run_stage_locally(config, "masks")["subject"]
    assert first["generated"] == 2
    assert run_stage_locally(config, "masks")["subject"]["generated"] == 0
