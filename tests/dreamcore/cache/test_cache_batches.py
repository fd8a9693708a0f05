"""CachedBatchSource: TrainingBatch tensors from the caches, SDXL time ids, loss masks, resume, processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dreamcore.cache.batches import open_batch_source
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.stages import run_cache
from dreamcore.cache.text import read_caption_index
from dreamcore.cache.vae import read_index
from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.pipeline import run_ingest
from dreamcore.storage import ArtifactStore, StageResult


def build_run(tmp_path: Path, model: str, **training) -> tuple[RunConfig, ArtifactStore, dict, StageResult]:
    demo = write_demo_dataset(tmp_path / "demo", n_images=6, include_class_images=5)
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": model,
                "storage_root": str(tmp_path / "artifacts"),
                "train_batch_size": 2,
                "seed": 3,
                "cache_shard_size": 4,
                **training,
            },
            "datasets": [
                {
                    "id": "subject",
                    "instance_data_dir": str(demo.images_dir),
                    "caption_strategy": "textfile",
                    "conditioning_data": "subject-masks",
                    "resolution": 64,
                    "crop": True,
                    "crop_aspect": "preserve",
                    "repeats": 2,
                },
                {
                    "id": "subject-masks",
                    "dataset_type": "conditioning",
                    "conditioning_type": "mask",
                    "instance_data_dir": str(demo.masks_dir),
                    "resolution": 64,
                },
                {
                    "id": "regularisation",
                    "instance_data_dir": str(demo.class_images_dir),
                    "caption_strategy": "instanceprompt",
                    "instance_prompt": demo.class_prompt,
                    "resolution": 64,
                    "is_regularisation_data": True,
                },
                {
                    "id": "text-embeds",
                    "dataset_type": "text_embeds",
                    "default": True,
                    "cache_dir": str(tmp_path / "text"),
                },
            ],
        }
    )
    store = ArtifactStore(config.training.resolved_storage_root)
    run_ingest(config, store)
    out = run_cache(config, store)
    vae = {k: StageResult.model_validate(v) for k, v in out["vae_cache"].items()}
    text = StageResult.model_validate(out["text_cache"])
    return config, store, vae, text


def rows_by_path(store, result) -> dict[str, dict]:
    cache = ShardedCache(result.details["cache_uri"])
    out = {}
    for entry in read_index(store, result):
        out[entry["path"]] = {r["key"]: r for r in cache.read_shard(entry["shard"])}[entry["key"]] | {
            "captions": entry["captions"]
        }
    return out


@pytest.fixture(scope="module")
def sdxl_run(tmp_path_factory, tiny_models):
    return build_run(tmp_path_factory.mktemp("sdxl-run"), str(tiny_models["sdxl"]))


def test_batches_carry_cached_latents_embeddings_time_ids_and_masks(sdxl_run) -> None:
    config, store, vae, text = sdxl_run
    assert text.details["cache_uri"].endswith("/text")  # the default text_embeds dataset's cache_dir
    source = open_batch_source(store, config, vae, text)
    cached = {dataset_id: rows_by_path(store, result) for dataset_id, result in vae.items()}
    text_cache = ShardedCache(text.details["cache_uri"])
    text_rows = {r["caption"]: r for r in read_caption_index(store, text)}
    seen = set()
    for batch in [source.next_batch() for _ in range(12)]:
        dataset_id = batch.dataset_ids[0]
        seen.add(dataset_id)
        assert set(batch.dataset_ids) == {dataset_id} and 1 <= batch.size <= 2
        rows = [cached[dataset_id][p] for p in batch.paths]
        for i, row in enumerate(rows):
            assert torch.equal(batch.latents[i], get_tensor(row, "latents").float())
            expected_ids = [
                row["original_height"],
                row["original_width"],
                row["crop_top"],
                row["crop_left"],
                row["target_height"],
                row["target_width"],
            ]
            assert batch.time_ids[i].tolist() == expected_ids
            caption_row = text_rows[row["captions"][0]]
            text_row = {r["key"]: r for r in text_cache.read_shard(caption_row["shard"])}[caption_row["key"]]
            assert torch.equal(batch.prompt_embeds[i], get_tensor(text_row, "prompt_embeds").float())
            assert torch.equal(batch.pooled_prompt_embeds[i], get_tensor(text_row, "pooled_prompt_embeds").float())
        assert batch.time_ids.shape == (batch.size, 6) and batch.prompt_embeds.shape[1:] == (77, 64)
        is_reg = dataset_id == "regularisation"
        assert batch.is_regularisation.tolist() == [is_reg] * batch.size
        if is_reg:
            assert batch.loss_mask is None
        else:
            assert batch.loss_mask.shape == (batch.size, 1, *batch.latents.shape[-2:])
            for i, row in enumerate(rows):
                assert torch.equal(batch.loss_mask[i, 0], get_tensor(row, "mask").float() / 255)
    assert seen == {"subject", "regularisation"}


def test_resumed_source_yields_the_batches_an_uninterrupted_one_would(sdxl_run) -> None:
    config, store, vae, text = sdxl_run
    straight = open_batch_source(store, config, vae, text)
    expected = [straight.next_batch() for _ in range(15)]
    first = open_batch_source(store, config, vae, text)
    for _ in range(9):
        first.next_batch()
    resumed = open_batch_source(store, config, vae, text)
    resumed.load_state_dict(first.state_dict())
    for want in expected[9:]:
        got = resumed.next_batch()
        assert got.paths == want.paths and torch.equal(got.latents, want.latents)
        assert torch.equal(got.prompt_embeds, want.prompt_embeds)


def test_processes_take_turns_over_one_stream(sdxl_run) -> None:
    config, store, vae, text = sdxl_run
    single = open_batch_source(store, config, vae, text)
    stream = [single.next_batch().paths for _ in range(8)]
    ranks = [open_batch_source(store, config, vae, text, process_index=r, num_processes=2) for r in (0, 1)]
    for step in range(4):
        assert [ranks[r].next_batch().paths for r in (0, 1)] == stream[2 * step : 2 * step + 2]
    with pytest.raises(ValueError, match="saved with 2 processes"):
        single.load_state_dict(ranks[0].state_dict())


def test_refiner_time_ids_carry_the_aesthetic_score(tmp_path: Path, tiny_models) -> None:
    config, store, vae, text = build_run(tmp_path, str(tiny_models["sdxl-refiner"]), data_aesthetic_score=5.6)
    batch = open_batch_source(store, config, vae, text).next_batch()
    assert batch.time_ids.shape == (batch.size, 5)
    assert torch.equal(batch.time_ids[:, 4], torch.full((batch.size,), 5.6))
    assert batch.prompt_embeds.shape[1:] == (77, 32)  # the refiner has only the second encoder


def test_rows_held_out_for_eval_never_train() -> None:
    from dreamcore.cache.batches import held_out_rows, training_rows
    from dreamcore.config import DatasetSpec, RunConfig

    def config(fraction: float, with_eval: bool = False) -> RunConfig:
        datasets = [DatasetSpec(id="subject", instance_data_dir="/s"),
                    DatasetSpec(id="class", instance_data_dir="/c", is_regularisation_data=True)]
        if with_eval:
            datasets.append(DatasetSpec(id="eval", dataset_type="eval", instance_data_dir="/e"))
        return RunConfig(training={"pretrained_model_name_or_path": "/m", "eval_dataset_fraction": fraction},
                         datasets=datasets)

    rows = [{"path": f"img{i}.png", "key": f"k{i}"} for i in range(8)]
    run = config(0.25)
    kept = training_rows(run, run.dataset("subject"), rows)
    held = held_out_rows(rows, 0.25)
    assert len(held) == 2 and len(kept) == 6
    assert not {r["key"] for r in held} & {r["key"] for r in kept}
    assert training_rows(run, run.dataset("class"), rows) == rows  # regularisation data is never held out
    with_eval = config(0.25, with_eval=True)
    assert training_rows(with_eval, with_eval.dataset("subject"), rows) == rows  # an eval dataset replaces hold-out
