"""`dreamcore demo --family kolors`: a demo project on the tiny Kolors whose stages run up to the caches, its
ChatGLM3 rows in their own text-cache folder."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import load_run_config
from dreamcore.models import detect_family


def test_demo_writes_a_kolors_project_whose_caches_hold_chatglm_states(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--workdir", str(tmp_path), "--family", "kolors", "--no-run"]) == 0
    config_file = tmp_path / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == "kolors" and detect_family(config.pretrained_model_name_or_path).name == "kolors"
    assert Path(config.validation_preview_vae).name == "taesd"  # Kolors' VAE is SDXL's 4-channel one
    assert config.tokenizer_max_length is None  # ChatGLM3 reads KolorsPipeline's 256 tokens
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    text = cached["text_cache"]
    assert text["details"]["family"] == "kolors" and text["details"]["cache_uri"].endswith("/text_embeds_kolors")
    assert cached["vae_cache"]["subject"]["encoded"] == 8

