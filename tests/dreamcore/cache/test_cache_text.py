"""The text_cache stage: one row per unique caption per encoder fingerprint, equal to encode_prompt's output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dreamcore.cache.text as text_module
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.text import TextCacheJob, cache_text_embeds, read_caption_index, text_cache_key
from dreamcore.config import DatasetSpec
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import ingest_dataset, scan_dataset
from dreamcore.models import load_pipeline
from dreamcore.storage import ArtifactStore


@pytest.fixture
def captioned(tmp_path: Path):
    demo = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False, include_class_images=2)
    (demo.images_dir / "toy_00.txt").write_text("sks toy, first caption\nsks toy, second caption\n")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    subject = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile")
    regularisation = DatasetSpec(
        id="reg",
        instance_data_dir=str(demo.class_images_dir),
        caption_strategy="instanceprompt",
        instance_prompt=demo.class_prompt,
        is_regularisation_data=True,
    )
    ingests = {s.id: ingest_dataset(store, scan_dataset(s)).result for s in (subject, regularisation)}
    return store, ingests, demo, tmp_path


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_rows_equal_encode_prompt_and_a_second_run_encodes_nothing(captioned, tiny_models, kind: str) -> None:
    store, ingests, demo, tmp_path = captioned
    location = str(tmp_path / "text_cache" / kind)
    job = TextCacheJob(ingests, str(tiny_models[kind]), location, batch_size=3, shard_size=4)
    first = cache_text_embeds(store, job)
    expected_captions = sorted(
        set(demo.captions[1:]) | {"sks toy, first caption", "sks toy, second caption", demo.class_prompt}
    )
    index = read_caption_index(store, first.result)
    assert sorted(r["caption"] for r in index) == expected_captions
    assert first.encoded == len(expected_captions) and first.result.details["cache_uri"] == location
    assert first.result.counts["shards"] == 2  # 6 captions in shards of 4

    pipe = load_pipeline(tiny_models[kind], components={"unet": None, "vae": None})
    cache = ShardedCache(location)
    for entry in index:
        row = {r["key"]: r for r in cache.read_shard(entry["shard"])}[entry["key"]]
        with torch.no_grad():
            out = pipe.encode_prompt(
                prompt=[entry["caption"]], device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=False
            )
        embeds = get_tensor(row, "prompt_embeds")
        assert embeds.dtype == torch.float16 and embeds.shape == out[0].shape[1:]
        torch.testing.assert_close(embeds.float(), out[0][0].half().float(), atol=2e-3, rtol=0)
        pooled = get_tensor(row, "pooled_prompt_embeds")
        if kind == "sdxl":
            assert embeds.shape == (77, 64)  # both encoders' hidden states (32 + 32)
            torch.testing.assert_close(pooled.float(), out[2][0].half().float(), atol=2e-3, rtol=0)
        else:
            assert pooled is None

    second = cache_text_embeds(store, job)
    assert (second.result, second.encoded) == (first.result, 0)


def test_encoders_decide_the_rows_and_new_captions_encode_alone(captioned, tiny_models, monkeypatch) -> None:
    store, ingests, demo, tmp_path = captioned
    location = str(tmp_path / "shared-text-cache")
    base = TextCacheJob(ingests, str(tiny_models["sdxl"]), location)
    refiner = TextCacheJob(ingests, str(tiny_models["sdxl-refiner"]), location)
    assert base.encoder_fingerprint() != refiner.encoder_fingerprint()
    assert text_cache_key(base) != text_cache_key(refiner)
    cache_text_embeds(store, base)
    assert cache_text_embeds(store, refiner).encoded == 6  # the refiner's embeddings are its own

    encoded: list[str] = []
    real = text_module.encode_captions
    monkeypatch.setattr(
        text_module, "encode_captions", lambda pipe, captions, *more: encoded.extend(captions) or real(pipe, captions, *more)
    )
    (demo.images_dir / "toy_01.txt").write_text("a brand new caption\n")
    subject = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile")
    changed = dict(ingests, subject=ingest_dataset(store, scan_dataset(subject)).result)
    outcome = cache_text_embeds(store, TextCacheJob(changed, str(tiny_models["sdxl"]), location))
    assert encoded == ["a brand new caption"] and outcome.encoded == 1
