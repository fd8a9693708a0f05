"""Family detection, pipeline loading with tokenizer checks, fingerprints, hub ids offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dreamcore.models import (
    check_tokenizer,
    clip_tokenizer_from_words,
    detect_family,
    family_named,
    load_pipeline,
    model_fingerprint,
    write_tiny_sd,
)
from dreamcore.models.families import family_from_configs

HUB_ID = "acme/tiny-sd"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def offline_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache for this test, with HF_HUB_OFFLINE=1."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache_as_hub_snapshot(cache: Path, folder: Path) -> Path:
    """Lay `folder` out as the cached snapshot of HUB_ID, the way huggingface_hub stores it."""
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(folder, snapshot)
    return snapshot


@pytest.mark.parametrize(("kind", "family"), [("sd", "sd1"), ("sdxl", "sdxl"), ("sdxl-refiner", "sdxl-refiner")])
def test_detect_family_of_tiny_pipelines(tiny_models, kind, family):
    assert detect_family(tiny_models[kind]).name == family
    assert detect_family(str(tiny_models[kind])).name == family


@pytest.mark.parametrize(
    ("index", "unet", "family"),
    [
        ({"_class_name": "StableDiffusionPipeline"}, {"cross_attention_dim": 768}, "sd1"),
        ({"_class_name": "StableDiffusionPipeline"}, {"cross_attention_dim": 1024}, "sd2"),
        (
            {"_class_name": "StableDiffusionXLPipeline", "text_encoder": ["transformers", "CLIPTextModel"]},
            {"cross_attention_dim": 2048, "addition_embed_type": "text_time"},
            "sdxl",
        ),
        (
            {"_class_name": "StableDiffusionXLImg2ImgPipeline", "requires_aesthetics_score": True, "text_encoder": [None, None]},
            {"cross_attention_dim": 1280, "addition_embed_type": "text_time"},
            "sdxl-refiner",
        ),
    ],
)
def test_detect_family_of_real_model_configs(index, unet, family):
    assert family_from_configs(index, lambda folder: unet, where="model").name == family


def test_detect_family_errors_name_the_path(tiny_models, tmp_path):
    with pytest.raises(ValueError, match=f"{tiny_models['taesd']} is not a diffusers pipeline folder"):
        detect_family(tiny_models["taesd"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_family(tmp_path / "missing")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(ValueError, match="'KandinskyPipeline'.*not a pipeline dreamcore trains"):
        detect_family(tmp_path)


def test_tokenizer_files_removed_fails_loudly(tiny_models, tmp_path):
    # Without its files the tokenizer loads *silently* as 2 tokens under HF_HUB_OFFLINE=1.
    folder = shutil.copytree(tiny_models["sd"], tmp_path / "sd")
    for path in (folder / "tokenizer").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match=r"tokenizer has only \d entries.*sd/tokenizer"):
        load_pipeline(folder)


def test_sdxl_without_second_tokenizer_folder_fails_loudly(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["sdxl"], tmp_path / "sdxl")
    shutil.rmtree(folder / "tokenizer_2")
    with pytest.raises(ValueError, match=r"sdxl \(tokenizer_2\): tokenizer has only"):
        load_pipeline(folder)


def test_tokenizer_bigger_than_the_text_embedding_is_rejected(tiny_models):
    from transformers import CLIPTextModel

    encoder = CLIPTextModel.from_pretrained(tiny_models["sd"], subfolder="text_encoder")
    with pytest.raises(ValueError, match="different models"):
        check_tokenizer(clip_tokenizer_from_words(["sks"]), encoder)


def test_fingerprint_is_stable_across_writes_and_differs_between_seeds(tiny_models, tmp_path):
    again = write_tiny_sd(tmp_path / "somewhere" / "else", seed=0)
    other = write_tiny_sd(tmp_path / "other", seed=1)
    for component in ("vae", "text_encoder", "unet"):
        reference = model_fingerprint(tiny_models["sd"], component)
        assert len(reference) == 16
        assert model_fingerprint(again, component) == reference
        assert model_fingerprint(other, component) != reference
    assert model_fingerprint(tiny_models["sd"], "vae") != model_fingerprint(tiny_models["sd"], "unet")
    assert model_fingerprint(tiny_models["taesd"]) == model_fingerprint(str(tiny_models["taesd"]), None)


def test_fingerprint_ignores_library_versions_but_not_config_changes(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["sd"], tmp_path / "sd")
    config_path = folder / "vae" / "config.json"
    reference = model_fingerprint(folder, "vae")
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "_diffusers_version": "9.9.9"}, indent=4))
    assert model_fingerprint(folder, "vae") == reference
    config_path.write_text(json.dumps({**config, "scaling_factor": 0.5}))
    assert model_fingerprint(folder, "vae") != reference


def test_fingerprint_covers_one_weight_variant(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["sd"], tmp_path / "sd")
    reference = model_fingerprint(folder, "vae")
    shutil.copy(folder / "vae" / "diffusion_pytorch_model.safetensors", folder / "vae" / "diffusion_pytorch_model.fp16.safetensors")
    assert model_fingerprint(folder, "vae") == reference, "downloading another variant must not change it"
    assert model_fingerprint(folder, "vae", variant="fp16") != reference


def test_hub_id_offline_and_not_cached_gives_a_clear_error_quickly(offline_hub_cache):
    message = f"model {HUB_ID} not found locally and HF_HUB_OFFLINE=1: download it first"
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=message):
        detect_family(HUB_ID)
    with pytest.raises(FileNotFoundError, match=message):
        load_pipeline(HUB_ID, family=family_named("sd1"))
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        model_fingerprint(HUB_ID, "vae")
    assert time.perf_counter() - start < 5


def test_cached_hub_id_loads_offline_like_its_folder(tiny_models, offline_hub_cache):
    snapshot = _cache_as_hub_snapshot(offline_hub_cache, tiny_models["sd"])
    assert detect_family(HUB_ID).name == "sd1"
    assert model_fingerprint(HUB_ID, "vae") == model_fingerprint(tiny_models["sd"], "vae")
    pipe = load_pipeline(HUB_ID)
    assert Path(pipe.name_or_path) == snapshot


def test_importing_the_package_does_not_import_torch():
    code = (
        "import sys, dreamcore.models, dreamcore.models.loading, dreamcore.models.tiny;"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
