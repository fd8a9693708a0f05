"""The BatchSource the trainer consumes: committed caches + the multi-dataset sampler -> TrainingBatch.

Nothing here needs a VAE or text encoder: latents, masks and crop geometry come from the VAE-cache
shards, embeddings from the text-cache shards. Caption alternatives (textfile lines) are picked per
sample, seeded by (seed, step, slot), so a resumed run picks the same ones; caption dropout (a sample
trains on the empty caption "", cached once by the text cache) is drawn the same way.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dreamcore.cache.batch import TrainingBatch, stack_text
from dreamcore.cache.parquet_io import get_tensor
from dreamcore.cache.results import TextCacheDetails, VaeCacheDetails
from dreamcore.cache.shards import ShardedCache
from dreamcore.cache.text import read_caption_index, routed_caption_indexes
from dreamcore.cache.vae import read_index
from dreamcore.config import RunConfig
from dreamcore.data.sampler import MultiDatasetSampler, SampledBatch, SamplerDataset, fill_buckets, seeded_rng
from dreamcore.models import ModelFamily, family_named
from dreamcore.storage import ArtifactStore, StageResult


def held_out_rows(rows: list[dict], fraction: float) -> list[dict]:
    """The cache rows held out for evaluation: a fixed, content-chosen fraction (at least 1 row, never all)."""
    if fraction <= 0 or not rows:
        return []
    ranked = sorted(rows, key=lambda r: hashlib.sha256(r["key"].encode()).hexdigest())
    count = max(1, math.ceil(fraction * len(rows)))
    if len(rows) > 1:
        count = min(count, len(rows) - 1)  # never hold out a whole subject dataset
    return sorted(ranked[:count], key=lambda r: r["path"])


def training_rows(config: RunConfig, spec, rows: list[dict]) -> list[dict]:
    """A dataset's rows minus those held out for the eval loss (when the run has no eval dataset)."""
    fraction = config.training.eval_dataset_fraction
    if spec.is_regularisation_data or fraction <= 0 or any(d.dataset_type == "eval" for d in config.datasets):
        return rows
    held = {r["key"] for r in held_out_rows(rows, fraction)}
    return [r for r in rows if r["key"] not in held]


class ShardRows:
    """Rows of cache shards by key, keeping the most recently used shards in memory."""

    def __init__(self, location: str, capacity: int = 64) -> None:
        self.cache = ShardedCache(location)
        self.capacity = capacity
        self._shards: OrderedDict[str, dict[str, dict]] = OrderedDict()

    def row(self, shard: str, key: str) -> dict:
        rows = self._shards.get(shard)
        if rows is None:
            rows = {r["key"]: r for r in self.cache.read_shard(shard)}
            self._shards[shard] = rows
            if len(self._shards) > self.capacity:
                self._shards.popitem(last=False)
        self._shards.move_to_end(shard)
        if key not in rows:
            raise KeyError(f"cache shard {self.cache.uri}/{shard} has no row {key}; rerun the cache stage")
        return rows[key]


@dataclass
class CachedDataset:
    """One image dataset's committed VAE cache: its index rows and shard reader."""

    id: str
    rows: list[dict]  # the cache index: path, key, shard, bucket, captions, masked
    shards: ShardRows
    is_regularisation: bool
    masked: bool
    repeats: int = 0
    probability: float = 1.0
    caption_dropout: float = 0.0  # chance a sample trains on the empty caption

    def sampler_view(self) -> SamplerDataset:
        buckets: dict[str, list[int]] = {}
        for number, row in enumerate(self.rows):
            buckets.setdefault(row["bucket"], []).append(number)
        return SamplerDataset(self.id, buckets, self.repeats, self.probability)


class CachedBatchSource:
    """BatchSource over committed caches; each process takes every `num_processes`-th sampled batch."""

    def __init__(
        self,
        datasets: list[CachedDataset],
        text_rows: Mapping[str, dict],  # caption -> {"key", "shard"}
        text_location: str,
        *,
        family: ModelFamily,
        batch_size: int,
        seed: int = 0,
        aesthetic_score: float = 7.0,
        process_index: int = 0,
        num_processes: int = 1,
        bucket_fill: Literal["short", "refuse", "oversubscribe"] = "short",
        routed_text: Mapping[str, tuple[list[dict], str]] | None = None,
    ) -> None:
        """`bucket_fill`: what a bucket smaller than one batch does: trains as a short batch (eval), is
        refused (training, as SimpleTuner), or is padded by its own repeats (allow_dataset_oversubscription).
        `routed_text`: dataset id -> (caption rows, location) for datasets whose captions live in another
        text_embeds dataset's cache (text.routed_caption_indexes)."""
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process_index {process_index} is not in [0, {num_processes})")
        self.datasets = {d.id: d for d in datasets}
        views = [d.sampler_view() for d in datasets]
        if bucket_fill != "short":
            views = [fill_buckets(view, batch_size, bucket_fill == "oversubscribe") for view in views]
        self.sampler = MultiDatasetSampler(views, batch_size, seed)
        self.text_rows = text_rows
        self.text = ShardRows(text_location)
        self.routed_text = {dataset_id: ({r["caption"]: r for r in rows}, ShardRows(location))
                            for dataset_id, (rows, location) in (routed_text or {}).items()}
        self.family = family
        self.seed = seed
        self.aesthetic_score = aesthetic_score
        self.process_index, self.num_processes = process_index, num_processes

    def __iter__(self) -> Iterator[TrainingBatch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> TrainingBatch:
        """This process's next batch."""
        drawn = [self.sampler.next_batch() for _ in range(self.num_processes)]
        return self.materialise(drawn[self.process_index])

    def state_dict(self) -> dict[str, Any]:
        """Position after the last batch returned (JSON-able)."""
        return {"sampler": self.sampler.state_dict(), "num_processes": self.num_processes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by state_dict()."""
        if state.get("num_processes", 1) != self.num_processes:
            raise ValueError(
                f"batch position was saved with {state.get('num_processes')} processes, this run has {self.num_processes}"
            )
        self.sampler.load_state_dict(state["sampler"])

    def report(self) -> dict[str, dict]:
        """The sampler's per-dataset figures (images, batches per pass, short batches, share)."""
        return self.sampler.report()

    def materialise(self, sampled: SampledBatch) -> TrainingBatch:
        """Tensors of one sampled batch."""
        import torch

        dataset = self.datasets[sampled.dataset_id]
        index_rows = [dataset.rows[i] for i in sampled.items]
        cache_rows = [dataset.shards.row(r["shard"], r["key"]) for r in index_rows]
        captions = [self._caption(sampled.step, slot, r, dataset.caption_dropout) for slot, r in enumerate(index_rows)]
        text = [self._text_row(c, dataset.id, r["path"]) for c, r in zip(captions, index_rows)]
        pooled = [get_tensor(t, "pooled_prompt_embeds") for t in text]
        attention = [get_tensor(t, "prompt_attention_mask") for t in text]  # rows cached before masks: absent
        return TrainingBatch(
            latents=torch.stack([get_tensor(r, "latents").float() for r in cache_rows]),
            prompt_embeds=stack_text([get_tensor(t, "prompt_embeds").float() for t in text]),
            pooled_prompt_embeds=torch.stack([p.float() for p in pooled]) if pooled[0] is not None else None,
            time_ids=self._time_ids(cache_rows),
            loss_mask=self._loss_mask(dataset, cache_rows),
            is_regularisation=torch.full((len(index_rows),), dataset.is_regularisation, dtype=torch.bool),
            dataset_ids=[dataset.id] * len(index_rows),
            paths=[r["path"] for r in index_rows],
            prompt_attention_mask=stack_text([a.bool() for a in attention]) if attention[0] is not None else None,
            reference=self._references(dataset, index_rows),
        )

    def _caption(self, step: int, slot: int, index_row: dict, dropout: float = 0.0) -> str:
        """The sample's caption: "" with probability `dropout`, else one of its alternatives (both seeded by
        (seed, step, slot): a resumed run draws the same)."""
        if dropout > 0 and seeded_rng(self.seed, "caption_dropout", step, slot).random() < dropout:
            return ""
        captions = index_row["captions"]
        return captions[0] if len(captions) == 1 else seeded_rng(self.seed, "caption", step, slot).choice(captions)

    def _text_row(self, caption: str, dataset_id: str, path: str) -> dict:
        text_rows, shards = self.routed_text.get(dataset_id, (self.text_rows, self.text))
        entry = text_rows.get(caption)
        if entry is None and caption == "":
            raise KeyError(f"dataset {dataset_id!r} drops captions but the text cache has no empty caption; rerun "
                           "text_cache with this config (it caches \"\" when caption_dropout_probability > 0)")
        if entry is None:
            raise KeyError(f"dataset {dataset_id!r}: caption of {path} is not in the text cache; rerun text_cache")
        return shards.row(entry["shard"], entry["key"])

    def _time_ids(self, rows: list[dict]):
        """The family's micro-conditioning [B, n] (SDXL: 6 size ids; refiner: 5, aesthetic score last), or None."""
        import torch

        if self.family.time_ids is None:
            return None
        return torch.tensor([self.family.time_ids(r, self.aesthetic_score) for r in rows], dtype=torch.float32)

    def _references(self, dataset: CachedDataset, index_rows: list[dict]):
        """One [B, C, h', w'] per reference dataset of an edit dataset (None without references): the cached rows
        of each sample's paired reference image."""
        import torch

        counts = {len(r.get("references") or ()) for r in index_rows}
        if counts == {0}:
            return None
        out = []
        for slot in range(min(counts)):
            latents = [get_tensor(dataset.shards.row(r["reference_shards"][slot], r["references"][slot]), "latents")
                       for r in index_rows]
            if len({tuple(t.shape) for t in latents}) > 1:
                raise ValueError(f"dataset {dataset.id!r}: the reference_loose images of one batch have different "
                                 f"sizes ({[r['path'] for r in index_rows]}); use reference_strict (same bucket as the "
                                 "edit image) or train_batch_size 1")
            out.append(torch.stack([t.float() for t in latents]))
        return tuple(out)

    def _loss_mask(self, dataset: CachedDataset, rows: list[dict]):
        """[B, 1, h, w] in [0, 1] from cached masks; regularisation samples train everywhere."""
        import torch

        if not dataset.masked:
            return None
        masks = [get_tensor(r, "mask").float().div(255.0) for r in rows]
        if dataset.is_regularisation:  # prior preservation matches the base model on the whole image
            masks = [torch.ones_like(m) for m in masks]
        return torch.stack(masks).unsqueeze(1)


def open_batch_source(
    store: ArtifactStore,
    config: RunConfig,
    vae_results: Mapping[str, StageResult],
    text_result: StageResult,
    *,
    process_index: int = 0,
    num_processes: int = 1,
) -> CachedBatchSource:
    """The BatchSource of a run from its committed vae_cache results (by dataset id) and text_cache result."""
    training = config.training
    datasets = []
    for dataset_id, result in sorted(vae_results.items()):
        spec = config.dataset(dataset_id)
        if spec.dataset_type != "image":
            continue
        datasets.append(
            CachedDataset(
                id=dataset_id,
                rows=training_rows(config, spec, read_index(store, result)),
                shards=ShardRows(VaeCacheDetails.of(result).cache_uri),
                is_regularisation=spec.is_regularisation_data,
                masked=config.mask_dataset(spec) is not None,
                repeats=spec.repeats,
                probability=spec.probability,
                caption_dropout=config.caption_dropout(spec),
            )
        )
    text_rows = {r["caption"]: r for r in read_caption_index(store, text_result)}
    return CachedBatchSource(
        datasets,
        text_rows,
        TextCacheDetails.of(text_result).cache_uri,
        family=family_named(TextCacheDetails.of(text_result).family),
        batch_size=training.train_batch_size,
        seed=training.seed or 0,
        aesthetic_score=training.data_aesthetic_score,
        process_index=process_index,
        num_processes=num_processes,
        bucket_fill="oversubscribe" if training.allow_dataset_oversubscription else "refuse",
        routed_text=routed_caption_indexes(store, text_result),
    )
