"""Every SimpleTuner-style example config (tests/fixtures/simpletuner/examples: the seed document's examples and
ones modelled on SimpleTuner's published examples, with local datasets) loads as SimpleTuner would read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.config import ConfigError, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "simpletuner" / "examples"


def example_files(pattern: str) -> list[Path]:
    files = sorted(EXAMPLES.glob(pattern))
    assert files, f"no example files matching {pattern} under {EXAMPLES}"
    return files


def relocated(path: Path, tmp_path: Path) -> Path:
    """The example with every absolute /training path moved under tmp_path; nothing else changed."""
    text = path.read_text().replace('"/training/', f'"{tmp_path}/training/')
    target = tmp_path / path.name
    target.write_text(text)
    return target


@pytest.mark.parametrize("path", example_files("multidatabackend-*.json"), ids=lambda p: p.name)
def test_dataset_examples_load_without_warnings(path: Path, tmp_path: Path) -> None:
    loaded = load_config(relocated(path, tmp_path))
    raw = json.loads(path.read_text())
    assert [d.id for d in loaded.datasets] == [entry["id"] for entry in raw]
    assert loaded.warnings == []


@pytest.mark.parametrize("path", example_files("config-*.json"), ids=lambda p: p.name)
def test_config_fragments_load_and_keep_their_values(path: Path) -> None:
    loaded = load_config(path)
    raw = json.loads(path.read_text())
    assert loaded.warnings == []
    for key, value in raw.items():
        assert getattr(loaded.training, key.removeprefix("--")) == value


def test_four_dataset_example_resolves_regularisation_and_sizes(tmp_path: Path) -> None:
    loaded = load_config(relocated(EXAMPLES / "multidatabackend-dreambooth.json", tmp_path))
    by_id = {d.id: d for d in loaded.datasets}
    assert by_id["regularisation-data"].is_regularisation_data
    assert by_id["regularisation-data-1024px"].is_regularisation_data
    assert not by_id["subjectname-data-512px"].is_regularisation_data
    assert by_id["subjectname-data-1024px"].resolution == 1024
    assert by_id["subjectname-data-1024px"].minimum_image_size == 768
    assert by_id["textembeds"].default and by_id["textembeds"].dataset_type == "text_embeds"


def test_masked_loss_example_pairs_image_and_mask(tmp_path: Path) -> None:
    loaded = load_config(relocated(EXAMPLES / "multidatabackend-masked-loss.json", tmp_path))
    image, mask, _ = loaded.datasets
    assert image.conditioning_data == mask.id
    assert mask.dataset_type == "conditioning" and mask.conditioning_type == "mask"
    assert image.crop and image.crop_aspect == "square" and image.crop_style == "center"


def test_full_config_with_fragments_and_backend(tmp_path: Path) -> None:
    backend = relocated(EXAMPLES / "multidatabackend-dreambooth.json", tmp_path)
    base = tmp_path / "config.json"
    base.write_text(
        json.dumps(
            {
                "--model_family": "sdxl",
                "--pretrained_model_name_or_path": "/models/sdxl",
                "--data_backend_config": backend.name,
                "--lora_rank": "8",
            }
        )
    )
    loaded = load_config(base, EXAMPLES / "config-quantised.json", EXAMPLES / "config-scheduled-sampling.json")
    run = loaded.run_config()
    assert run.training.lora_rank == 8
    assert run.training.base_model_precision == "int8-quanto"
    assert run.training.scheduled_sampling_ramp_steps == 1000
    assert len(run.datasets) == 5


# What SimpleTuner's published examples set that dreamcore refuses, and why.
PUBLISHED_REFUSALS = {
    "st-sd1x-dreamshaper.peft-lora.json": set(),
    "st-sdxl.lycoris-lokr.json": set(),
    "st-flux.peft-lora.json": set(),  # grad_clip_method "value" is honoured
    "st-sd3.peft-lora.json": set(),
    "st-kolors.peft-lora.json": set(),
    "st-qwen_image.peft-lora.json": set(),
    "st-chroma.peft-lora.json": set(),
    "st-lumina2.peft-lora.json": set(),
    "st-sdxl.peft-controlnet-lora.json": {"controlnet"},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_REFUSALS))
def test_published_examples_load_or_name_what_is_refused(name: str) -> None:
    """Each loads, or every problem is a refusal naming its key, and exactly the expected ones."""
    try:
        loaded = load_config(EXAMPLES / name)
    except ConfigError as error:
        refused = {p.key for p in error.problems}
        assert all("refused: " in p.message for p in error.problems), error
        assert refused == PUBLISHED_REFUSALS[name], error
        return
    assert not PUBLISHED_REFUSALS[name]
    assert loaded.warnings == []
    assert all("ignored: cannot change the trained weights" in n for n in loaded.notices)
    (images, embeds) = loaded.datasets
    assert images.cache_dir_vae == f"cache/vae/{loaded.training.model_family}/{images.id}"
    assert embeds.cache_dir == f"cache/text/{loaded.training.model_family}"
