"""The refiner's caches: 5 time ids from the data and config, its own text cache, the base's VAE rows when shared."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.stages import committed_ingests
from dreamcore.cache.text import read_caption_index
from dreamcore.cache.vae import read_index
from dreamcore.data.ingest import read_manifest


def test_refiner_time_ids_are_original_size_crop_and_the_configured_aesthetic_score(make_run, ingest_and_cache, tiny_models):
    config = make_run(str(tiny_models["sdxl-refiner"]), data_aesthetic_score=5.6)
    store, vae, text, _ = ingest_and_cache(config)
    sizes = {row["path"]: (row["height"], row["width"])
             for row in read_manifest(store, committed_ingests(config, store)["subject"])}
    source = open_batch_source(store, config, vae, text)
    seen = 0
    for _ in range(6):
        batch = source.next_batch()
        assert batch.time_ids.shape == (batch.size, 5)
        for path, ids in zip(batch.paths, batch.time_ids.tolist()):
            if batch.dataset_ids[0] != "subject":
                continue
            seen += 1
            height, width = sizes[path]
            assert ids[:2] == [height, width]  # the image's own (upright) size, not the 64 px bucket
            assert ids[4] == pytest.approx(5.6)
            assert 0 <= ids[2] <= height and 0 <= ids[3] <= width
    assert seen and any(h != 64 or w != 64 for h, w in sizes.values())  # sizes really come from the data


def test_refiner_crop_ids_match_its_vae_cache_rows(make_run, ingest_and_cache, tiny_models):
    config = make_run(str(tiny_models["sdxl-refiner"]))
    store, vae, text, _ = ingest_and_cache(config)
    batch = open_batch_source(store, config, vae, text).next_batch()
    index = {r["path"]: r for r in read_index(store, vae[batch.dataset_ids[0]])}
    shards = ShardedCache(vae[batch.dataset_ids[0]].details["cache_uri"])
    for path, ids in zip(batch.paths, batch.time_ids.tolist()):
        row = next(r for r in shards.read_shard(index[path]["shard"]) if r["key"] == index[path]["key"])
        assert ids == [row["original_height"], row["original_width"], row["crop_top"], row["crop_left"], 7.0]


def test_refiner_text_cache_holds_only_text_encoder_2_outputs_apart_from_the_base(make_run, ingest_and_cache, tiny_models):
    base_config = make_run(str(tiny_models["sdxl"]))
    refiner_config = make_run(str(tiny_models["sdxl-refiner"]))
    store, _, base_text, _ = ingest_and_cache(base_config)
    _, _, refiner_text, caches = ingest_and_cache(refiner_config)
    assert caches["text_cache"]["encoded"] > 0  # nothing reused from the base's cache
    assert refiner_text.details["family"] == "sdxl-refiner" and base_text.details["family"] == "sdxl"
    assert refiner_text.key != base_text.key
    assert refiner_text.details["cache_uri"] != base_text.details["cache_uri"]
    assert refiner_text.details["cache_uri"].rstrip("/").endswith("text_embeds_refiner")
    base_rows = {r["caption"]: r for r in read_caption_index(store, base_text)}
    refiner_rows = {r["caption"]: r for r in read_caption_index(store, refiner_text)}
    assert set(base_rows) == set(refiner_rows)
    assert not {r["key"] for r in base_rows.values()} & {r["key"] for r in refiner_rows.values()}
    caption = min(refiner_rows)
    refiner_row = _row(refiner_text, refiner_rows[caption])
    base_row = _row(base_text, base_rows[caption])
    embeds = get_tensor(refiner_row, "prompt_embeds").float()
    assert embeds.shape == (77, 32)  # text_encoder_2's width alone; the base holds 32 + 32
    # The tiny base and refiner share text_encoder_2's weights: the refiner's rows are exactly the
    # second encoder's half of the base's rows, and nothing of the first encoder.
    base_embeds = get_tensor(base_row, "prompt_embeds").float()
    assert torch.allclose(embeds, base_embeds[:, 32:], atol=2e-3)
    assert not torch.allclose(embeds, base_embeds[:, :32], atol=2e-3)
    assert torch.allclose(get_tensor(refiner_row, "pooled_prompt_embeds").float(),
                          get_tensor(base_row, "pooled_prompt_embeds").float(), atol=2e-3)


def _row(result, entry):
    shards = ShardedCache(result.details["cache_uri"])
    return next(r for r in shards.read_shard(entry["shard"]) if r["key"] == entry["key"])


def test_vae_cache_is_shared_with_the_base_only_when_the_vae_fingerprint_matches(make_run, ingest_and_cache, tiny_models, tmp_path):
    _, _, _, base = ingest_and_cache(make_run(str(tiny_models["sdxl"])))
    assert all(r["encoded"] > 0 for r in base["vae_cache"].values())
    _, _, _, refiner = ingest_and_cache(make_run(str(tiny_models["sdxl-refiner"])))
    assert all(r["encoded"] == 0 and r["reused"] > 0 for r in refiner["vae_cache"].values())  # same VAE: same rows

    other = shutil.copytree(tiny_models["sdxl-refiner"], tmp_path / "refiner-other-vae")
    vae_config = other / "vae" / "config.json"
    vae_config.write_text(json.dumps(json.loads(vae_config.read_text()) | {"scaling_factor": 0.2}))
    _, _, _, changed = ingest_and_cache(make_run(str(other)))
    assert all(r["encoded"] == r["counts"]["images"] for r in changed["vae_cache"].values())  # another VAE: its own rows
