"""The multi-dataset sampler: proportions, even mixing, coverage, small buckets, determinism and resume."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dreamcore.data.sampler import MultiDatasetSampler, SamplerDataset


def subject_and_regularisation(repeats: int = 9) -> list[SamplerDataset]:
    subject = SamplerDataset("subject", {"64x64": list(range(8)), "128x64": [8, 9]}, repeats=repeats)
    regularisation = SamplerDataset("regularisation", {"64x64": list(range(100))})
    return [subject, regularisation]


def draw(sampler: MultiDatasetSampler, n: int) -> list:
    return [sampler.next_batch() for _ in range(n)]


def test_mixing_follows_images_times_repeats_and_probability() -> None:
    # 10 subject images x (1 + 9 repeats) = 100 samples per pass against 100 regularisation images.
    batches = draw(MultiDatasetSampler(subject_and_regularisation(), batch_size=4, seed=1), 2000)
    share = Counter(b.dataset_id for b in batches)["subject"] / len(batches)
    assert share == pytest.approx(0.5, abs=0.04)
    weighted = [
        SamplerDataset("a", {"b": list(range(10))}, probability=3.0),
        SamplerDataset("b", {"b": list(range(10))}),
    ]
    share_a = Counter(b.dataset_id for b in draw(MultiDatasetSampler(weighted, 2, seed=0), 2000))["a"] / 2000
    assert share_a == pytest.approx(0.75, abs=0.04)


def test_regularisation_mixes_evenly_through_the_run() -> None:
    batches = draw(MultiDatasetSampler(subject_and_regularisation(), batch_size=4, seed=2), 400)
    for start in range(0, 400, 50):  # every stretch of 50 batches holds both datasets, about equally
        window = Counter(b.dataset_id for b in batches[start : start + 50])
        assert 10 <= window["regularisation"] <= 40


def test_a_pass_visits_every_image_once_per_repeat_one_bucket_per_batch() -> None:
    datasets = subject_and_regularisation(repeats=2)
    sampler = MultiDatasetSampler(datasets, batch_size=4, seed=3)
    batches = sampler.pass_batches("subject", 0)
    seen = Counter(item for _, items in batches for item in items)
    assert seen == {item: 3 for item in range(10)}
    for bucket, items in batches:
        assert 1 <= len(items) <= 4
        assert set(items) <= set(datasets[0].buckets[bucket])
    assert sampler.report()["subject"]["dropped_images"] == 0


def test_a_bucket_smaller_than_the_batch_still_trains() -> None:
    tiny = SamplerDataset("tiny", {"64x64": [0, 1, 2], "128x64": [3]})
    sampler = MultiDatasetSampler([tiny], batch_size=8, seed=0)
    batches = draw(sampler, 4)
    assert sorted(sorted(b.items) for b in batches[:2]) == [[0, 1, 2], [3]]
    assert sampler.report()["tiny"] == {
        "images": 4,
        "repeats": 0,
        "batches_per_pass": 2,
        "short_batches_per_pass": 2,
        "dropped_images": 0,
        "share": 1.0,
        "short_buckets": {"64x64": 3, "128x64": 1},  # training refuses this dataset (fill_buckets, below)
    }


def test_same_seed_same_batches_other_seed_other_batches() -> None:
    first = draw(MultiDatasetSampler(subject_and_regularisation(), 4, seed=7), 60)
    again = draw(MultiDatasetSampler(subject_and_regularisation(), 4, seed=7), 60)
    other = draw(MultiDatasetSampler(subject_and_regularisation(), 4, seed=8), 60)
    assert first == again
    assert first != other


def test_resume_from_a_saved_position_continues_exactly() -> None:
    uninterrupted = draw(MultiDatasetSampler(subject_and_regularisation(), 4, seed=5), 150)
    interrupted = MultiDatasetSampler(subject_and_regularisation(), 4, seed=5)
    draw(interrupted, 97)
    saved = json.loads(json.dumps(interrupted.state_dict()))  # checkpoints store it as JSON
    resumed = MultiDatasetSampler(subject_and_regularisation(), 4, seed=5)
    resumed.load_state_dict(saved)
    assert saved["step"] == 97
    assert draw(resumed, 53) == uninterrupted[97:]


def test_resume_refuses_other_settings_and_zero_probability_is_never_drawn() -> None:
    state = MultiDatasetSampler(subject_and_regularisation(), 4, seed=5).state_dict()
    with pytest.raises(ValueError, match="seed 5, this run uses 6"):
        MultiDatasetSampler(subject_and_regularisation(), 4, seed=6).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        MultiDatasetSampler(subject_and_regularisation(), 2, seed=5).load_state_dict(state)
    off = [SamplerDataset("on", {"b": [0, 1]}), SamplerDataset("off", {"b": [0]}, probability=0.0)]
    assert {b.dataset_id for b in draw(MultiDatasetSampler(off, 1), 50)} == {"on"}
    with pytest.raises(ValueError, match="no dataset can be sampled"):
        MultiDatasetSampler([SamplerDataset("off", {"b": [0]}, probability=0.0)], 1)


def test_a_dataset_with_zero_full_batches_is_refused_as_simpletuner_refuses_it(caplog) -> None:
    import logging

    from dreamcore.data.sampler import BucketFillError, fill_buckets

    tiny = SamplerDataset("subject", {"512x512": [0, 1], "640x384": [5]})
    with pytest.raises(BucketFillError) as error:
        fill_buckets(tiny, 4, allow_oversubscription=False)
    message = str(error.value)
    assert "\n" not in message and "dataset 'subject' produces zero full batches of train_batch_size 4" in message
    assert "512x512: 2 sample(s), 640x384: 1 sample(s)" in message and "repeats to at least 3" in message
    assert "allow_dataset_oversubscription" in message
    repeated = SamplerDataset("subject", {"640x384": [5]}, repeats=1)
    with pytest.raises(BucketFillError, match="not with repeats set"):
        fill_buckets(repeated, 4, allow_oversubscription=True)  # SimpleTuner: manual repeats are never overridden
    # A short bucket beside a full one trains as short batches, with one warning line and in the report.
    mixed = SamplerDataset("subject", {"512x512": [0, 1, 2, 3, 4], "640x384": [5]})
    with caplog.at_level(logging.WARNING, logger="dreamcore.data.sampler"):
        assert fill_buckets(mixed, 4, allow_oversubscription=False) is mixed
    assert len(caplog.records) == 1 and "640x384: 1 sample(s)" in caplog.text
    assert MultiDatasetSampler([mixed], 4).report()["subject"]["short_buckets"] == {"640x384": 1}
    assert fill_buckets(mixed, 1, allow_oversubscription=False) is mixed


def test_oversubscription_pads_only_the_short_buckets_and_says_so(caplog) -> None:
    import logging

    from dreamcore.data.sampler import fill_buckets

    dataset = SamplerDataset("subject", {"512x512": [0, 1, 2, 3, 4], "640x384": [5]})
    with caplog.at_level(logging.WARNING, logger="dreamcore.data.sampler"):
        padded = fill_buckets(dataset, 4, allow_oversubscription=True)
    assert padded.bucket_repeats == {"640x384": 3}
    assert "640x384 x4" in caplog.text
    sampler = MultiDatasetSampler([padded], batch_size=4, seed=0)
    batches = sampler.pass_batches("subject", 0)
    assert sorted(items for bucket, items in batches if bucket == "640x384") == [(5, 5, 5, 5)]
    assert sorted(len(items) for bucket, items in batches if bucket == "512x512") == [1, 4]
    assert sampler.report()["subject"]["padded_buckets"] == {"640x384": 4}
