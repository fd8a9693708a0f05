"""`dreamcore demo --family kolors`: a demo project on the tiny Kolors whose stages run up to the caches, its
ChatGLM3 rows in their own text-cache folder."""

from __future__ import annotations

from pathlib import Path

from tests.dreamcore.demo_caches import demo_caches


def test_demo_writes_a_kolors_project_whose_caches_hold_chatglm_states(tmp_path: Path, capsys) -> None:
    config, cached = demo_caches("kolors", tmp_path, capsys)
    assert Path(config.validation_preview_vae).name == "taesd"  # Kolors' VAE is SDXL's 4-channel one
    assert config.tokenizer_max_length is None  # ChatGLM3 reads KolorsPipeline's 256 tokens
    text = cached["text_cache"]
    assert text["details"]["family"] == "kolors" and text["details"]["cache_uri"].endswith("/text_embeds_kolors")
    assert cached["vae_cache"]["subject"]["encoded"] == 8

