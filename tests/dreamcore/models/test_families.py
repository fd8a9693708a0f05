"""The model-family registry: every family is complete, detection round-trips, nobody else names a family."""

from __future__ import annotations

import json
import re
import shutil
import typing
from pathlib import Path

import diffusers
import pytest

import dreamcore
from dreamcore.config.options.model import ModelOptions
from dreamcore.models import all_families, detect_family, family_named, load_pipeline
from dreamcore.models.families import families_of_config, family_names

PACKAGE = Path(dreamcore.__file__).parent
TINY_KIND = {"sd1": "sd", "sdxl": "sdxl", "sdxl-refiner": "sdxl-refiner", "kolors": "kolors",
             "chroma": "chroma", "lumina2": "lumina2"}  # family -> tiny model kind
# Where family names may appear: the registry, the tiny-model builders (one per family), the config's
# model_family field, which holds SimpleTuner's own vocabulary ("sdxl", "sd1x", "legacy").
_MAY_NAME_FAMILIES = ("models/families/", "models/tiny.py", "config/options/model.py")


def test_names_are_unique_and_resolve():
    names = family_names()
    assert len(set(names)) == len(names) == len(all_families())
    for name in names:
        assert family_named(name).name == name
    with pytest.raises(ValueError, match="unknown model family 'nope'.*sdxl"):
        family_named("nope")


@pytest.mark.parametrize("family", all_families(), ids=lambda f: f.name)
def test_every_family_states_what_each_stage_needs(family):
    assert hasattr(diffusers, family.pipeline_class)
    assert family.text_components and all(c.startswith(("text_encoder", "tokenizer")) for c in family.text_components)
    assert family.denoiser not in family.skipped_for_training and "vae" in family.skipped_for_training
    assert family.objective.timestep_split in ("none", "on_request", "always")
    # pixel space: no decoder; Qwen-Image: no Tiny AutoEncoder published for its latents (validation_preview_vae)
    assert family.lora_exports and (family.preview_decoder or family.latent_vae is None or family.name == "qwen_image")
    assert family.prompt_hidden_layer in (-1, -2)
    assert family.tiny_model is not None or family.name == "sd2"  # SD 2.x: the SD 1.x tiny model, widened
    if family.time_ids is not None:
        row = {"original_height": 96, "original_width": 64, "crop_top": 8, "crop_left": 0,
               "target_height": 64, "target_width": 64}
        assert all(isinstance(v, (int, float)) for v in family.time_ids(row, 6.0))


def test_every_simpletuner_model_family_value_means_a_registered_family():
    values = typing.get_args(ModelOptions.model_fields["model_family"].annotation)
    for value in values:
        assert families_of_config(value), f"model_family {value!r} names no registered family"


@pytest.mark.parametrize("name", sorted(TINY_KIND))
def test_detection_round_trips_on_the_tiny_models(tiny_models, name):
    folder = tiny_models[TINY_KIND[name]]
    family = detect_family(folder)
    assert family.name == name
    for component in (family.denoiser, *family.text_components):
        assert (folder / component).is_dir(), f"{name}: {component} missing from its tiny model"


def test_sd2_is_told_from_sd1_by_its_text_width(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models["sd"], tmp_path / "sd2")
    config_file = folder / "unet" / "config.json"
    config_file.write_text(json.dumps(json.loads(config_file.read_text()) | {"cross_attention_dim": 1024}))
    assert detect_family(folder).name == "sd2"


@pytest.mark.parametrize("name", sorted(TINY_KIND))
def test_training_components_and_time_ids_fit_the_model(tiny_models, name):
    """The pipeline loads without what training skips, and the family's time ids fill the UNet's added embedding."""
    family = family_named(name)
    pipe = load_pipeline(tiny_models[TINY_KIND[name]], family,
                         components={component: None for component in family.skipped_for_training})
    denoiser = getattr(pipe, family.denoiser)
    assert denoiser is not None and all(getattr(pipe, c, None) is None for c in family.text_components)
    added = denoiser.config.get("addition_embed_type")
    assert (family.time_ids is not None) == (added == "text_time") == family.pooled_text
    if family.time_ids is not None:
        row = {"original_height": 64, "original_width": 64, "crop_top": 0, "crop_left": 0,
               "target_height": 64, "target_width": 64}
        width = len(family.time_ids(row, 6.0)) * denoiser.config.addition_time_embed_dim
        pooled = denoiser.config.projection_class_embeddings_input_dim - width
        assert pooled > 0  # what is left of the added embedding is the pooled text embedding


def test_no_module_outside_the_registry_names_a_family():
    names = "|".join(re.escape(n) for n in family_names())
    quoted = re.compile(rf"[\"'](?:{names})[\"']")
    compared = re.compile(r"\bfamily\s*(?:==|!=|\bin\b|\bnot in\b)|family\w*\.startswith\(")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(_MAY_NAME_FAMILIES):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if quoted.search(line) or compared.search(line):
                offenders.append(f"dreamcore/{relative}:{number}: {line.strip()}")
    assert not offenders, "ask the family (dreamcore.models.families) instead:\n" + "\n".join(offenders)
