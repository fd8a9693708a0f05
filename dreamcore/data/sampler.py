"""The multi-dataset sampler: which dataset and bucket each batch comes from, deterministic by seed.

- Every batch holds items of one dataset and one aspect bucket (so latents stack).
- A dataset's *pass* visits each of its images 1 + `repeats` times: per bucket, the images are
  shuffled once per repeat and the permutations are concatenated, then cut into batches. The last
  batch of a bucket may be short: nothing is dropped. A bucket whose samples (with repeats) cannot
  fill one batch is refused for training as SimpleTuner refuses it (fill_buckets), or with
  allow_dataset_oversubscription repeated alone until it fills one.
- Each step picks a dataset with weight `probability × images × (1 + repeats)`, so over a run
  every dataset is seen in proportion to its images (with repeats) and its probability, mixed
  evenly through the run: with equal probabilities a regularisation set and a subject with enough
  repeats alternate rather than taking turns epoch by epoch. A dataset starts its next pass when
  it finishes one (reshuffled by pass number).
- The position (step, each dataset's pass and batch) is a small JSON dict: save it with a
  checkpoint and a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from dreamcore.storage.faults import RunFault

logger = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True)
class SamplerDataset:
    """One dataset as the sampler sees it: item ids grouped by bucket, plus repeats and probability."""

    id: str
    buckets: Mapping[str, Sequence[int]]  # bucket name -> item ids (e.g. row numbers of the cache index)
    repeats: int = 0
    probability: float = 1.0
    bucket_repeats: Mapping[str, int] = field(default_factory=dict)  # repeats of padded buckets (oversubscription)

    @property
    def images(self) -> int:
        return sum(len(items) for items in self.buckets.values())

    def repeats_of(self, bucket: str) -> int:
        return self.bucket_repeats.get(bucket, self.repeats)

    @property
    def weight(self) -> float:
        """How much of the run this dataset gets (relative)."""
        return self.probability * sum(len(items) * (1 + self.repeats_of(b)) for b, items in self.buckets.items())


class BucketFillError(RunFault, ValueError):
    """A dataset cannot fill one batch in any aspect bucket (SimpleTuner refuses such a dataset too)."""


def undersized_buckets(dataset: SamplerDataset, batch_size: int) -> dict[str, int]:
    """bucket -> its samples with repeats, for every bucket with fewer samples than one batch."""
    sizes = {bucket: len(items) * (1 + dataset.repeats_of(bucket)) for bucket, items in dataset.buckets.items()}
    return {bucket: samples for bucket, samples in sorted(sizes.items()) if 0 < samples < batch_size}


def fill_buckets(dataset: SamplerDataset, batch_size: int, allow_oversubscription: bool) -> SamplerDataset:
    """What buckets that cannot fill one batch do, as SimpleTuner documents it: a dataset left with zero
    full batches is refused (BucketFillError naming the buckets, the repeats each needs and the fixes);
    with allow_dataset_oversubscription and no repeats of the user's, each short bucket alone is repeated
    until it fills one batch. Short buckets beside full ones train as short batches, with a warning line."""
    short = undersized_buckets(dataset, batch_size)
    if not short:
        return dataset
    needed = {bucket: math.ceil(batch_size / len(dataset.buckets[bucket])) - 1 for bucket in short}
    listed = ", ".join(f"{bucket}: {samples} sample(s)" for bucket, samples in short.items())
    if allow_oversubscription and dataset.repeats == 0:
        logger.warning("dataset %r: allow_dataset_oversubscription repeats %d bucket(s) smaller than train_batch_size "
                       "%d until each fills one batch: %s", dataset.id, len(short), batch_size,
                       ", ".join(f"{bucket} x{needed[bucket] + 1}" for bucket in short))
        return replace(dataset, bucket_repeats=dict(needed))
    if len(short) == sum(1 for items in dataset.buckets.values() if items):
        note = " (not with repeats set: raise repeats instead)" if dataset.repeats else ""
        raise BucketFillError(
            f"dataset {dataset.id!r} produces zero full batches of train_batch_size {batch_size}: every aspect bucket "
            f"is smaller ({listed}, with repeats {dataset.repeats}); reduce train_batch_size, set repeats to at least "
            f"{max(needed.values())}, add images, or set allow_dataset_oversubscription{note}")
    logger.warning("dataset %r: %d aspect bucket(s) cannot fill one batch of train_batch_size %d and train as short "
                   "batches (%s); set repeats or allow_dataset_oversubscription to fill them",
                   dataset.id, len(short), batch_size, listed)
    return dataset


@dataclass(frozen=True)
class SampledBatch:
    """One batch's origin: its dataset, bucket, item ids, and the global step that drew it."""

    step: int
    dataset_id: str
    bucket: str
    items: tuple[int, ...]


def seeded_rng(*parts: object) -> random.Random:
    """A random.Random seeded by the repr of `parts` (stable across processes and machines)."""
    return random.Random(hashlib.sha256(repr(parts).encode()).digest())


class MultiDatasetSampler:
    """Endless, seeded stream of SampledBatch over several datasets; see the module docstring."""

    def __init__(self, datasets: Sequence[SamplerDataset], batch_size: int, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids = [d.id for d in datasets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"dataset ids must be unique, got {ids}")
        self.datasets = {d.id: d for d in datasets}
        self.batch_size = batch_size
        self.seed = seed
        self._order = [d.id for d in datasets if d.weight > 0]
        if not self._order:
            raise ValueError(
                "no dataset can be sampled: every dataset is empty or has probability 0 "
                f"({', '.join(f'{d.id}: {d.images} images, probability {d.probability}' for d in datasets)})"
            )
        weights = [self.datasets[i].weight for i in self._order]
        self._cumulative = [sum(weights[: n + 1]) for n in range(len(weights))]
        self.step = 0
        self._positions = {i: [0, 0] for i in self._order}  # dataset id -> [pass, batch index]
        self._pass_cache: dict[str, tuple[int, list[tuple[str, tuple[int, ...]]]]] = {}

    def pass_batches(self, dataset_id: str, pass_number: int) -> list[tuple[str, tuple[int, ...]]]:
        """(bucket, items) of every batch of one pass over a dataset, in order."""
        cached = self._pass_cache.get(dataset_id)
        if cached and cached[0] == pass_number:
            return cached[1]
        dataset = self.datasets[dataset_id]
        rng = seeded_rng(self.seed, dataset_id, pass_number)
        batches: list[tuple[str, tuple[int, ...]]] = []
        for bucket in sorted(dataset.buckets):
            sequence: list[int] = []
            for _ in range(1 + dataset.repeats_of(bucket)):
                permutation = list(dataset.buckets[bucket])
                rng.shuffle(permutation)
                sequence.extend(permutation)
            batches.extend(
                (bucket, tuple(sequence[i : i + self.batch_size])) for i in range(0, len(sequence), self.batch_size)
            )
        rng.shuffle(batches)
        self._pass_cache[dataset_id] = (pass_number, batches)
        return batches

    def choose_dataset(self, step: int) -> str:
        """The dataset that global step `step` draws from (a pure function of seed and step)."""
        point = seeded_rng(self.seed, "step", step).random() * self._cumulative[-1]
        return self._order[min(bisect.bisect_right(self._cumulative, point), len(self._order) - 1)]

    def next_batch(self) -> SampledBatch:
        """The next batch; advances the position."""
        dataset_id = self.choose_dataset(self.step)
        position = self._positions[dataset_id]
        batches = self.pass_batches(dataset_id, position[0])
        bucket, items = batches[position[1]]
        position[1] += 1
        if position[1] == len(batches):
            position[0], position[1] = position[0] + 1, 0
        batch = SampledBatch(self.step, dataset_id, bucket, items)
        self.step += 1
        return batch

    def state_dict(self) -> dict:
        """The position after the last batch drawn (JSON-able)."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "step": self.step,
            "positions": {k: list(v) for k, v in self._positions.items()},
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from a saved position; refuses one saved with another seed, batch size or datasets."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"sampler state version {state.get('version')!r} is not {STATE_VERSION}")
        for name in ("seed", "batch_size"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"sampler state was saved with {name} {state[name]!r}, this run uses {getattr(self, name)!r}; "
                    "resume with the same settings or start a new run"
                )
        if set(state["positions"]) != set(self._positions):
            raise ValueError(
                f"sampler state covers datasets {sorted(state['positions'])}, this run has {sorted(self._positions)}"
            )
        self.step = int(state["step"])
        self._positions = {k: [int(v[0]), int(v[1])] for k, v in state["positions"].items()}

    def report(self) -> dict[str, dict]:
        """Per dataset: images, batches per pass, short batches per pass, share of batches (0..1)."""
        total = self._cumulative[-1]
        out = {}
        for dataset_id, dataset in self.datasets.items():
            batches = self.pass_batches(dataset_id, 0) if dataset.weight > 0 else []
            out[dataset_id] = {
                "images": dataset.images,
                "repeats": dataset.repeats,
                "batches_per_pass": len(batches),
                "short_batches_per_pass": sum(len(items) < self.batch_size for _, items in batches),
                "dropped_images": 0,
                "share": dataset.weight / total,
            }
            short = undersized_buckets(dataset, self.batch_size)
            if short:  # buckets that cannot fill one batch: bucket -> samples per pass
                out[dataset_id]["short_buckets"] = short
            if dataset.bucket_repeats:  # allow_dataset_oversubscription: bucket -> times each image is seen per pass
                out[dataset_id]["padded_buckets"] = {b: 1 + r for b, r in sorted(dataset.bucket_repeats.items())}
        return out
