"""caption_dropout_probability: the empty caption is cached once, dropped samples train on it (seeded by
step and slot, so a resumed source draws the same), a dataset's own probability wins, SD3's uncond
behaviours zero the parts they name, and a run with dropout trains end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.text import read_caption_index
from dreamcore.config import load_run_config
from dreamcore.storage import ArtifactStore, StageResult

T5_TOKENS = 64
CLIP_TOKENS = 77


@pytest.fixture
def project(write_project, tmp_path):
    """(kind, model, dataset=None, **training) -> the cache tests' one-dataset project, set up to train 2 LoRA
    steps on the CPU without validation."""

    def write(kind: str, model: Path, dataset: dict | None = None, **training) -> Path:
        return write_project(tmp_path, kind, model, dataset, **({
            "--optimizer": "adamw", "--max_train_steps": 2, "--mixed_precision": "no", "--lora_rank": 2,
            "--validation_disable": True} | training))

    return write


@pytest.fixture
def cached(run_stage, capsys):
    """config.json -> (run config, store, vae results, text result, cache stage output) after ingest + cache."""

    def cache(config_file: Path):
        run_stage(config_file, "ingest", capsys)
        out = run_stage(config_file, "cache", capsys)
        config = load_run_config(config_file)
        store = ArtifactStore(config.training.resolved_storage_root)
        vae = {"subject": StageResult.model_validate(out["vae_cache"]["subject"])}
        return config, store, vae, StageResult.model_validate(out["text_cache"]), out

    return cache


def empty_row(store, text) -> dict:
    entry = next(r for r in read_caption_index(store, text) if r["caption"] == "")
    return {r["key"]: r for r in ShardedCache(text.details["cache_uri"]).read_shard(entry["shard"])}[entry["key"]]


def test_empty_caption_is_cached_once_and_dropped_samples_train_on_it(project, cached, run_stage, tiny_models, capsys):
    config_file = project("sd1x", tiny_models["sd"], **{"--caption_dropout_probability": 0.5})
    config, store, vae, text, out = cached(config_file)
    assert out["text_cache"]["encoded"] == 5  # 4 captions + ""
    captions = [r["caption"] for r in read_caption_index(store, text)]
    assert captions.count("") == 1
    empty = get_tensor(empty_row(store, text), "prompt_embeds").float()

    source = open_batch_source(store, config, vae, text)
    batches = [source.next_batch() for _ in range(40)]
    dropped = [bool(torch.equal(b.prompt_embeds[i], empty)) for b in batches for i in range(b.size)]
    assert 0.3 < sum(dropped) / len(dropped) < 0.7, sum(dropped)

    # Seeded by (seed, step, slot): a source resumed at batch 20 draws what the first one drew.
    again = open_batch_source(store, config, vae, text)
    for _ in range(20):
        again.next_batch()
    resumed = open_batch_source(store, config, vae, text)
    resumed.load_state_dict(json.loads(json.dumps(again.state_dict())))
    for straight in batches[20:]:
        assert torch.equal(resumed.next_batch().prompt_embeds, straight.prompt_embeds)

    # A second cache run reuses everything, "" included.
    assert run_stage(config_file, "cache", capsys)["text_cache"]["encoded"] == 0


@pytest.mark.parametrize("own", [0.0, 1.0])
def test_a_datasets_own_probability_wins(project, cached, tiny_models, own):
    config_file = project("sd1x", tiny_models["sd"], {"caption_dropout_probability": own},
                                **{"--caption_dropout_probability": 0.5})
    config, store, vae, text, _ = cached(config_file)
    assert config.caption_dropout(config.dataset("subject")) == own
    if own == 0.0:  # no dataset drops: nothing to cache
        assert "" not in [r["caption"] for r in read_caption_index(store, text)]
        return
    empty = get_tensor(empty_row(store, text), "prompt_embeds").float()
    source = open_batch_source(store, config, vae, text)
    samples = [source.next_batch() for _ in range(10)]
    dropped = [bool(torch.equal(b.prompt_embeds[i], empty)) for b in samples for i in range(b.size)]
    assert all(dropped)


def test_no_dropout_caches_no_empty_caption(project, cached, tiny_models):
    _, store, _, text, out = cached(project("sd1x", tiny_models["sd"]))
    assert out["text_cache"]["encoded"] == 4
    assert "" not in [r["caption"] for r in read_caption_index(store, text)]


@pytest.mark.parametrize(("clip", "t5", "clip_zero", "t5_zero"), [
    ("empty_string", None, False, False),
    ("zero", None, True, True),  # T5 follows the CLIP behaviour when unset
    ("zero", "empty_string", True, False),
    ("empty_string", "zero", False, True),
])
def test_sd3_uncond_behaviours_zero_the_parts_they_name(project, cached, tiny_models, clip, t5, clip_zero, t5_zero):
    options = {"--caption_dropout_probability": 0.1, "--sd3_clip_uncond_behaviour": clip}
    if t5 is not None:
        options["--sd3_t5_uncond_behaviour"] = t5
    _, store, _, text, _ = cached(project("sd3", tiny_models["sd3"], **options))
    row = empty_row(store, text)
    embeds, pooled = get_tensor(row, "prompt_embeds").float(), get_tensor(row, "pooled_prompt_embeds").float()
    assert embeds.shape == (CLIP_TOKENS + T5_TOKENS, 32)
    assert bool((embeds[:CLIP_TOKENS] == 0).all()) == clip_zero
    assert bool((pooled == 0).all()) == clip_zero
    assert bool((embeds[CLIP_TOKENS:] == 0).all()) == t5_zero


def test_flux_empty_caption_carries_its_t5_mask_and_a_run_with_dropout_trains(project, cached, run_stage, tiny_models,
                                                                              capsys):
    config_file = project("flux", tiny_models["flux"], **{"--caption_dropout_probability": 0.5,
                                                                         "--flux_attention_masked_training": True})
    _, store, _, text, _ = cached(config_file)
    row = empty_row(store, text)
    mask = get_tensor(row, "prompt_attention_mask")
    assert mask.shape == (T5_TOKENS,) and 0 < int(mask.sum()) < T5_TOKENS  # "" is one end-of-text token
    assert get_tensor(row, "pooled_prompt_embeds").shape == (32,)
    trained = run_stage(config_file, "train", capsys)["train"]
    assert trained["counts"]["steps"] == 2
    assert run_stage(config_file, "train", capsys)["train"]["key"] == trained["key"]  # committed: reused
