"""`dreamcore demo --family z_image`: a demo project on the tiny Z-Image whose stages run up to the caches, its
Qwen3 rows (with their attention mask) in their own text-cache folder."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.demo import DEMO_T5_TOKENS
from dreamcore.models import detect_family


def test_demo_writes_a_z_image_project_whose_caches_hold_qwen3_states(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", "z_image", "--no-run"]) == 0
    config_file = tmp_path / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == "z_image" and detect_family(config.pretrained_model_name_or_path).name == "z_image"
    assert Path(config.validation_preview_vae).name == "taesd16"  # the Flux-style 16-channel VAE
    assert config.tokenizer_max_length == DEMO_T5_TOKENS  # Qwen3's length is configurable, as T5's
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    text = cached["text_cache"]
    assert text["details"]["family"] == "z_image" and text["details"]["cache_uri"].endswith("/text_embeds_z_image")
    assert cached["vae_cache"]["subject"]["encoded"] == 8
