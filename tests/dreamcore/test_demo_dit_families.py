"""`dreamcore demo --family chroma|lumina2`: a demo project on the family's tiny model whose stages run up to the
caches, its text rows holding the sequence encoder's states (T5, Gemma2) and the mask its pipeline attends
through, no pooled embedding."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fsspec.core import url_to_fs

from dreamcore.cache.parquet_io import get_tensor
from tests.dreamcore.demo_caches import demo_caches


@pytest.mark.parametrize("family", ["chroma", "lumina2"])
def test_demo_caches_sequence_states_with_their_mask(family, tmp_path: Path, capsys) -> None:
    config, cached = demo_caches(family, tmp_path, capsys)
    assert Path(config.validation_preview_vae).name == "taesd16"  # Flux's 16-channel VAE
    assert config.tokenizer_max_length == 64  # a short sequence for the tiny model
    text = cached["text_cache"]
    assert text["details"]["family"] == family and cached["vae_cache"]["subject"]["encoded"] == 8
    fs, root = url_to_fs(text["details"]["cache_uri"])
    files = [f for f in fs.find(root) if f.endswith(".parquet")]
    row = pq.read_table(fs.open(files[0], "rb")).to_pylist()[0]
    mask, states = get_tensor(row, "prompt_attention_mask"), get_tensor(row, "prompt_embeds")
    assert get_tensor(row, "pooled_prompt_embeds") is None and mask.shape == states.shape[:1] == (64,)
    assert mask.sum() < 64 and mask[: int(mask.sum())].all()  # the tokens it attends to, then masked padding
