"""The refine stage: paired base/refined images, the latent hand-off, a tuned refiner LoRA, idempotent and resumable."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from dreamcore.config import TrainingConfig
from dreamcore.drawing.grids import HEADER_PX, LABEL_PX
from dreamcore.drawing.pipelines import load_validation_pipeline
from dreamcore.refine.stage import refine_key, refine_stage
from dreamcore.storage import ArtifactStore


@pytest.fixture
def refine_config(tiny_models):
    def make(**values) -> TrainingConfig:
        return TrainingConfig(**({
            "pretrained_model_name_or_path": str(tiny_models["sdxl"]),
            "refiner_model_name_or_path": str(tiny_models["sdxl-refiner"]),
            "validation_prompt": ["sks toy", "sks toy on a table"], "validation_seed": 5,
            "validation_num_inference_steps": 5, "mixed_precision": "no", "refiner_training_strength": 0.4,
        } | values))

    return make


def _picture(store: ArtifactStore, path: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(store.read_bytes(path))).convert("RGB"), dtype=np.int16)


def test_refine_stage_writes_paired_base_and_refined_images(refine_config, tiny_models, tmp_path):
    config, store = refine_config(), ArtifactStore(str(tmp_path / "artifacts"))
    result, worked = refine_stage(config, store, None)
    assert worked and result.counts == {"pairs": 2, "images": 4} and result.details["handoff"] == "latents"
    pairs = result.details["pairs"]
    assert [(p["prompt"], p["seed"]) for p in pairs] == [("sks toy", 5), ("sks toy on a table", 5)]

    # Base: exactly what the stock SDXL pipeline draws; refined: the stock refiner on the base's final latents.
    base_pipe = load_validation_pipeline(str(tiny_models["sdxl"]), "cpu")
    refiner = load_validation_pipeline(str(tiny_models["sdxl-refiner"]), "cpu")
    with torch.no_grad():
        latents = base_pipe(prompt="sks toy", num_inference_steps=5, guidance_scale=7.5, output_type="latent",
                            generator=torch.Generator("cpu").manual_seed(5)).images
        expected = refiner(prompt="sks toy", image=latents, strength=0.4, num_inference_steps=5, guidance_scale=7.5, aesthetic_score=7.0,
                           negative_aesthetic_score=2.5, generator=torch.Generator("cpu").manual_seed(5)).images[0]
        drawn = base_pipe(prompt="sks toy", num_inference_steps=5, guidance_scale=7.5, generator=torch.Generator("cpu").manual_seed(5))
    base, refined = _picture(store, pairs[0]["base"]), _picture(store, pairs[0]["refined"])
    assert np.array_equal(base, np.asarray(drawn.images[0], dtype=np.int16))
    assert np.abs(refined - np.asarray(expected, dtype=np.int16)).max() <= 1
    assert np.abs(refined - base).max() > 0
    grid = Image.open(io.BytesIO(store.read_bytes(result.details["grid"])))
    assert grid.size == (LABEL_PX + 2 * 64, HEADER_PX + 2 * 64)  # base row over refined row, one column per pair
    assert np.array_equal(np.asarray(grid.convert("RGB"), np.int16)[HEADER_PX:HEADER_PX + 64, LABEL_PX:LABEL_PX + 64],
                          base)

    again, worked = refine_stage(config, store, None)
    assert not worked and again == result


def test_refine_stage_resumes_only_the_missing_pairs(refine_config, tmp_path):
    config, store = refine_config(), ArtifactStore(str(tmp_path / "artifacts"))
    result, _ = refine_stage(config, store, None)
    folder = f"refine/{result.key}"
    store.remove(f"{folder}/_SUCCESS.json")
    store.remove(result.details["pairs"][1]["base"].rsplit("/", 1)[0] + "/pair.json")
    progress = []
    resumed, worked = refine_stage(config, store, None, on_progress=lambda done, total: progress.append((done, total)))
    assert worked and progress == [(1, 1)] and resumed.digest == result.digest


def test_tuned_refiner_lora_changes_only_the_refined_images(refine_config, tiny_models, tmp_path):
    from diffusers import StableDiffusionXLImg2ImgPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(tiny_models["sdxl-refiner"]))
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                     init_lora_weights=False))
    StableDiffusionXLImg2ImgPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=get_peft_model_state_dict(
        pipe.unet), weight_name="pytorch_lora_weights.safetensors")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    stock, _ = refine_stage(refine_config(), store, None)
    tuned, _ = refine_stage(refine_config(refiner_lora_path=str(tmp_path / "lora")), store, None)
    assert tuned.key != stock.key and tuned.details["refiner_lora"] == str(tmp_path / "lora")
    for a, b in zip(stock.details["pairs"], tuned.details["pairs"]):
        assert np.array_equal(_picture(store, a["base"]), _picture(store, b["base"]))
        assert np.abs(_picture(store, a["refined"]) - _picture(store, b["refined"])).max() > 0


def test_refine_stage_hands_over_images_when_the_vaes_differ(refine_config, tiny_models, tmp_path):
    other = shutil.copytree(tiny_models["sdxl-refiner"], tmp_path / "refiner")
    vae_config = other / "vae" / "config.json"
    vae_config.write_text(json.dumps(json.loads(vae_config.read_text()) | {"scaling_factor": 0.2}))
    config = refine_config(refiner_model_name_or_path=str(other), validation_prompt="sks toy")
    result, _ = refine_stage(config, ArtifactStore(str(tmp_path / "artifacts")), None)
    assert result.details["handoff"] == "images" and result.counts["pairs"] == 1


def test_refine_stage_explains_bad_settings(refine_config, tiny_models, tmp_path):
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(ValueError, match="refiner_model_name_or_path"):
        refine_stage(refine_config(refiner_model_name_or_path=None), store, None)
    with pytest.raises(ValueError, match="validation_prompt"):
        refine_stage(refine_config(validation_prompt=None), store, None)
    with pytest.raises(ValueError, match="not an SDXL refiner"):
        refine_stage(refine_config(refiner_model_name_or_path=str(tiny_models["sdxl"])), store, None)
    with pytest.raises(FileNotFoundError, match="refiner_lora_path"):
        refine_key(refine_config(refiner_lora_path=str(tmp_path / "missing")), None)


@pytest.mark.parametrize(("steps", "strength", "expected"), [(30, 0.2, 30), (3, 0.2, 5), (2, 0.35, 3), (1, 1.0, 1)])
def test_img2img_runs_at_least_one_step(steps, strength, expected):
    from dreamcore.drawing.pipelines import img2img_steps

    assert img2img_steps(steps, strength) == expected
    assert int(expected * strength) >= 1  # what diffusers' img2img runs
