"""The vae_cache stage: exact latents per crop, no second encode, shard-by-shard resume, locations, dtypes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

import dreamcore.cache.encode as encode_module
import dreamcore.cache.vae as vae_module
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.vae import STAGE, cache_vae_latents, read_index, vae_cache_key
from dreamcore.config import DatasetSpec, check_dataset_list
from dreamcore.data.buckets import CropPlan, apply_plan, plan_crop
from dreamcore.data.images import load_rgb
from dreamcore.data.ingest import read_manifest
from dreamcore.storage import committed_result


def cached_rows(setup, result) -> dict[str, dict]:
    """image path -> its cache shard row."""
    cache = ShardedCache(result.details["cache_uri"])
    rows = {}
    for entry in read_index(setup.store, result):
        shard = {r["key"]: r for r in cache.read_shard(entry["shard"])}
        rows[entry["path"]] = shard[entry["key"]]
    return rows


def plan_of(row: dict) -> CropPlan:
    return CropPlan(
        (row["original_width"], row["original_height"]),
        (row["resized_width"], row["resized_height"]),
        row["crop_top"],
        row["crop_left"],
        (row["target_width"], row["target_height"]),
    )


def count_encoded_images(monkeypatch) -> list[int]:
    """Patch the VAE encode the cache calls so each call records its batch size."""
    calls: list[int] = []
    real = vae_module.encode_images

    def counting(vae, pixels):
        calls.append(int(pixels.shape[0]))
        return real(vae, pixels)

    monkeypatch.setattr(vae_module, "encode_images", counting)
    return calls


def test_latents_equal_the_vaes_output_for_that_exact_crop(cache_setup) -> None:
    job = cache_setup.job()
    outcome = cache_vae_latents(cache_setup.store, job)
    assert outcome.encoded == 8 and outcome.result.counts["images"] == 8
    manifest = {r["path"]: r for r in read_manifest(cache_setup.store, job.ingest)}
    vae = encode_module.load_vae(cache_setup.model, "cpu")
    for path, row in cached_rows(cache_setup, outcome.result).items():
        plan = plan_of(row)
        assert plan == plan_crop(
            manifest[path]["width"], manifest[path]["height"], job.buckets, manifest[path]["digest"]
        )
        image = apply_plan(load_rgb((Path(cache_setup.image.instance_data_dir) / path).read_bytes()), plan)
        expected = encode_module.encode_pixels(vae, encode_module.pixels_from_images([image]))[0]
        latents = get_tensor(row, "latents")
        assert latents.dtype == torch.float16
        assert latents.shape == (4, plan.target_size[1] // 2, plan.target_size[0] // 2)
        torch.testing.assert_close(latents.float(), expected.half().float(), atol=2e-3, rtol=0)
    assert outcome.result.details["buckets"] == {"128x64": 1, "64x64": 7}


def test_second_run_encodes_nothing_and_rows_are_shared(cache_setup, storage_root: str, monkeypatch) -> None:
    calls = count_encoded_images(monkeypatch)
    job = cache_setup.job(root=storage_root)
    store = type(cache_setup.store)(storage_root)
    first = cache_vae_latents(store, job)
    assert (first.encoded, sum(calls)) == (8, 8)
    second = cache_vae_latents(store, job)
    assert (second.result, second.encoded, second.reused, sum(calls)) == (first.result, 0, 8, 8)

    # Another experiment on the same images and sizes (a new stage key) reuses every row.
    renamed = cache_setup.image.model_copy(update={"id": "same-images-other-name"})
    other = cache_vae_latents(store, cache_setup.job(renamed, root=storage_root))
    assert other.result.key != first.result.key
    assert (other.encoded, other.reused, sum(calls)) == (0, 8, 8)

    # One changed image: only that one is encoded.
    Image.new("RGB", (96, 96), (0, 90, 200)).save(cache_setup.demo.image_paths[0])  # its mask is 96x96 too
    changed = cache_vae_latents(store, cache_setup.job(root=storage_root))
    assert (changed.encoded, sum(calls)) == (1, 9)


def test_interrupted_stage_resumes_with_only_the_missing_shards(cache_setup, monkeypatch) -> None:
    job = cache_setup.job()  # shard_size 3: shards of 1 (128x64), 3, 3, 1 (64x64) rows
    real_chunk = vae_module._encode_chunk
    chunks_done = []

    def failing_after_two_shards(job, vae, chunk):
        if len(chunks_done) == 2:
            raise RuntimeError("injected failure")
        chunks_done.append(len(chunk))
        return real_chunk(job, vae, chunk)

    monkeypatch.setattr(vae_module, "_encode_chunk", failing_after_two_shards)
    with pytest.raises(RuntimeError, match="injected failure"):
        cache_vae_latents(cache_setup.store, job)
    assert committed_result(cache_setup.store, STAGE, vae_cache_key(job)) is None
    assert len(ShardedCache(job.location).shard_files()) == 2
    written_before = sum(chunks_done)

    monkeypatch.setattr(vae_module, "_encode_chunk", real_chunk)
    calls = count_encoded_images(monkeypatch)
    resumed = cache_vae_latents(cache_setup.store, job)
    assert resumed.encoded == 8 - written_before == sum(calls)
    assert resumed.shards_written == 4 - 2
    assert resumed.result.counts["shards"] == 4 == len(ShardedCache(job.location).shard_files())


def test_cache_dir_vae_and_bf16(cache_setup, tmp_path: Path) -> None:
    location = tmp_path / "vae_cache" / "subject"
    spec = cache_setup.image.model_copy(update={"cache_dir_vae": str(location)})
    bf16 = cache_vae_latents(cache_setup.store, cache_setup.job(spec, cache_dtype="bf16"))
    assert bf16.result.details["cache_uri"] == str(location)
    assert len(list((location / "shards").glob("*.parquet"))) == bf16.result.counts["shards"]
    fp16 = cache_vae_latents(cache_setup.store, cache_setup.job(spec))
    assert fp16.encoded == 8  # the dtype is part of the row key
    bf16_rows, fp16_rows = cached_rows(cache_setup, bf16.result), cached_rows(cache_setup, fp16.result)
    for path, row in bf16_rows.items():
        latents = get_tensor(row, "latents")
        assert latents.dtype == torch.bfloat16
        torch.testing.assert_close(
            latents.float(), get_tensor(fp16_rows[path], "latents").float(), atol=0.05, rtol=0.02
        )


def test_one_cache_dir_for_differently_sized_datasets_is_an_error() -> None:
    small = DatasetSpec(id="small", instance_data_dir="/d", resolution=512, cache_dir_vae="/cache/vae")
    large = DatasetSpec(id="large", instance_data_dir="/d", resolution=1024, cache_dir_vae="/cache/vae/")
    problems = check_dataset_list([small, large])
    assert [(p.dataset_id, p.key) for p in problems] == [("large", "cache_dir_vae")]
    assert "also used by dataset 'small'" in str(problems[0])
    twin = small.model_copy(update={"id": "twin"})
    assert check_dataset_list([small, twin]) == []
