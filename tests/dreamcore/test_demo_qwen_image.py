"""`dreamcore demo --family qwen_image`: a demo project on the tiny Qwen-Image whose stages run up to the caches, its
Qwen2.5-VL rows (each caption's own length, with its mask) in their own text-cache folder."""

from __future__ import annotations

from pathlib import Path

from dreamcore.cache.parquet_io import get_tensor, read_table
from dreamcore.demo import DEMO_T5_TOKENS
from dreamcore.storage import ArtifactStore
from tests.dreamcore.demo_caches import demo_caches


def test_demo_writes_a_qwen_image_project_whose_caches_hold_masked_qwen_states(tmp_path: Path, capsys) -> None:
    config, cached = demo_caches("qwen_image", tmp_path, capsys)
    assert config.tokenizer_max_length == DEMO_T5_TOKENS  # Qwen2.5-VL's caption length, passed to drawing too
    text = cached["text_cache"]
    assert text["details"]["family"] == "qwen_image"
    assert text["details"]["cache_uri"].rstrip("/").endswith("/text_embeds_qwen_image")
    assert cached["vae_cache"]["subject"]["encoded"] == 8
    store = ArtifactStore(text["details"]["cache_uri"])
    rows = [row for shard in store.list("shards") for row in read_table(store, shard)]
    lengths = set()
    for row in rows:
        embeds, mask = get_tensor(row, "prompt_embeds"), get_tensor(row, "prompt_attention_mask")
        assert embeds.shape == (mask.shape[0], 32) and mask.all()  # a row is its caption's own tokens
        lengths.add(mask.shape[0])
    assert len(lengths) > 1  # captions of different lengths are cached unpadded
