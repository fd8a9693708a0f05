"""`dreamcore demo --family z_image`: a demo project on the tiny Z-Image whose stages run up to the caches, its
Qwen3 rows (with their attention mask) in their own text-cache folder."""

from __future__ import annotations

from pathlib import Path

from dreamcore.demo import DEMO_T5_TOKENS
from tests.dreamcore.demo_caches import demo_caches


def test_demo_writes_a_z_image_project_whose_caches_hold_qwen3_states(tmp_path: Path, capsys) -> None:
    config, cached = demo_caches("z_image", tmp_path, capsys)
    assert Path(config.validation_preview_vae).name == "taesd16"  # the Flux-style 16-channel VAE
    assert config.tokenizer_max_length == DEMO_T5_TOKENS  # Qwen3's length is configurable, as T5's
    text = cached["text_cache"]
    assert text["details"]["family"] == "z_image" and text["details"]["cache_uri"].endswith("/text_embeds_z_image")
    assert cached["vae_cache"]["subject"]["encoded"] == 8
