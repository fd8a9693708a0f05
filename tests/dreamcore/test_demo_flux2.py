"""`dreamcore demo --family flux2`: a demo project on the tiny Flux.2 (klein) whose stages run up to the caches,
its Qwen3 rows in their own text-cache folder, its latents the normalised patches of AutoencoderKLFlux2."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.demo import DEMO_T5_TOKENS
from dreamcore.models import detect_family


def test_demo_writes_a_flux2_project_whose_caches_hold_qwen3_states(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", "flux2", "--no-run"]) == 0
    config_file = tmp_path / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == "flux2" and detect_family(config.pretrained_model_name_or_path).name == "flux2"
    assert config.validation_preview_vae is None  # no Tiny AutoEncoder decodes Flux.2 latents
    assert config.tokenizer_max_length == DEMO_T5_TOKENS
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    text = cached["text_cache"]
    assert text["details"]["family"] == "flux2" and text["details"]["cache_uri"].endswith("/text_embeds_flux2")
    assert cached["vae_cache"]["subject"]["encoded"] == 8
