"""`dreamcore demo --family sd3|flux|flux2`: a demo project on that family's tiny model, whose stages run up to the
caches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.demo import DEMO_T5_TOKENS, tiny_model_of
from dreamcore.models import detect_family, family_named


# family -> its preview decoder in the demo: a 16-channel Tiny AutoEncoder; none for Flux.2 (TAEF2 is no
# AutoencoderTiny)
PREVIEW_DECODERS = {"sd3": "taesd16", "flux": "taesd16", "flux2": None}


@pytest.mark.parametrize("kind", sorted(PREVIEW_DECODERS))
def test_demo_writes_a_project_on_the_familys_tiny_model(tmp_path: Path, capsys, kind: str) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", kind, "--no-run"]) == 0
    config_file = tmp_path / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == kind and detect_family(config.pretrained_model_name_or_path).name == kind
    preview = config.validation_preview_vae
    assert (preview and Path(preview).name) == PREVIEW_DECODERS[kind]
    assert config.tokenizer_max_length == DEMO_T5_TOKENS
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    assert cached["text_cache"]["details"]["family"] == kind
    assert cached["text_cache"]["details"]["cache_uri"].endswith("/" + family_named(kind).text_cache_folder)
    assert cached["vae_cache"]["subject"]["encoded"] == 8


@pytest.mark.parametrize("family", ["deepfloyd", "deepfloyd-ii"])
def test_deepfloyd_demo_caches_pixels_without_a_preview_decoder(tmp_path: Path, capsys, family: str) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", family, "--no-run"]) == 0
    config_file = tmp_path / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == "deepfloyd" and detect_family(config.pretrained_model_name_or_path).name == family
    assert config.validation_preview_vae is None  # pixel space: previews need no decoder
    assert config.tokenizer_max_length is None  # IF reads a fixed 77 T5 tokens
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    assert cached["text_cache"]["details"]["family"] == family
    assert cached["vae_cache"]["subject"]["encoded"] == 8


def test_demo_refuses_a_family_without_a_drawing_tiny_model(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", "sdxl-refiner", "--no-run"]) == 2
    choices = ("chroma, deepfloyd, deepfloyd-ii, flux, flux2, kolors, kontext, lumina2, qwen_image, sd1, sd3, sdxl, "
               "z_image")
    assert f"choose --family from {choices}" in capsys.readouterr().err


def test_default_demo_is_unchanged(tmp_path: Path) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--no-run"]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["--model_family"] == "sd1x" and config["--pretrained_model_name_or_path"].endswith("/sd")
    assert config["--validation_preview_vae"].endswith("/taesd") and "--tokenizer_max_length" not in config


@pytest.mark.parametrize(("asked", "family"), [("sdxl", "sdxl"), ("sd1x", "sd1"), ("legacy", "sd1"), ("sd3", "sd3"),
                                               ("flux", "flux"), ("sd1", "sd1"),
                                               ("deepfloyd", "deepfloyd"), ("deepfloyd-ii", "deepfloyd-ii"),
                                               ("z_image", "z_image"),
                                               ("kontext", "kontext"),
                                               ])
def test_simpletuner_model_family_values_pick_the_tiny_model_that_draws(tiny_models, asked: str, family: str) -> None:
    # sdxl also names the refiner and sd1x also SD 2.x: the demo takes the tiny model that draws from prompts.
    assert detect_family(tiny_model_of(tiny_models, asked)).name == family


def test_the_demo_runs_its_project_as_dreamcore_run_would(tmp_path: Path, monkeypatch) -> None:
    """`dreamcore demo` hands its config to the run command with that command's own defaults (it once built
    the run's arguments by hand and broke when `run` gained --quick). The flow itself is covered by
    tests/flows; here it records the config it was given."""
    import dreamcore.cli

    given = []
    monkeypatch.setattr(dreamcore.cli, "run_dreambooth", lambda config: given.append(config) or {"ok": True})
    assert main(["demo", "--workdir", str(tmp_path)]) == 0
    (config,) = given
    assert config == load_run_config(tmp_path / "config.json")  # the file as `dreamcore run CONFIG` reads it
    training = config.training
    assert training.pretrained_model_name_or_path.endswith("/sd")
    # The demo's own config turns the subject-fidelity protocol on, on its quick subset (5 prompts).
    assert training.evaluation_protocol_on and training.evaluation_quick and training.evaluation_dino_model
