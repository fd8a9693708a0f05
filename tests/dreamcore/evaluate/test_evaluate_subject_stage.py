"""The evaluate stage with the DreamBooth protocol on a tiny LoRA training: every metric for every weights,
the report and its pictures, real-image embeddings reused, Cached on a second run."""

from __future__ import annotations

import logging

import pytest

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.evaluate.eval_set import EvalSet
from dreamcore.evaluate.stage import evaluate_key, evaluate_stage
from dreamcore.evaluate.subject_fidelity import METRICS, metrics_by_weights, rank_weights
from dreamcore.pipeline import run_ingest
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource, collate, demo_samples
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage


@pytest.fixture(scope="module")
def protocol_run(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate-protocol")
    samples = demo_samples(tiny_models["sd"], tmp / "demo", subjects=3, regularisation=0, masks=False)
    root = str(tmp / "artifacts")
    config = RunConfig(
        training={"pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x",
                  "mixed_precision": "no", "max_train_steps": 4, "checkpointing_steps": 2, "train_batch_size": 2,
                  "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw", "storage_root": root,
                  "validation_prompt": "a photo of sks toy", "validation_seed": 5,
                  "validation_num_inference_steps": 2, "validation_resolution": 64, "eval_timesteps": 2,
                  "evaluation_prompt_set": "dreambooth_object", "evaluation_quick": True,
                  "evaluation_prompt": "a {token} {class} on a red table", "evaluation_token": "sks",
                  "evaluation_class": "toy", "evaluation_images_per_prompt": 2, "evaluation_batch_size": 5,
                  "evaluation_dino_model": str(tiny_models["dino"]),
                  "pretrained_evaluation_model_name_or_path": str(tiny_models["clip"])},
        datasets=[DatasetSpec(id="subject", instance_data_dir=str(tmp / "demo" / "instance_images"))],
    )
    store = ArtifactStore(root)
    run_ingest(config, store)
    train = train_stage(plan_training(config, {"latents": "abc"}), store, InMemoryBatchSource(samples[:2], 2),
                        show_progress=False)
    eval_set = EvalSet([collate(samples[2:])], "demo", ["s2"], "demo-digest")
    return config, store, train, eval_set


def test_every_metric_for_every_weights_then_cached(protocol_run, caplog) -> None:
    config, store, train, eval_set = protocol_run
    with caplog.at_level(logging.INFO, logger="dreamcore.evaluate"):
        result, worked = evaluate_stage(config, store, train, eval_set)
    assert worked
    size = [r.message for r in caplog.records if r.message.startswith("evaluating ")]
    assert size == ["evaluating 3 weights x (validation 1 prompts x 1 images; protocol 6 prompts + class prompt x 2 "
                    "images (batches of 5)), 2 sampling steps at 64x64; eval loss 1 eval images x 2 timesteps "
                    "(latents 32x32)"]
    table = metrics_by_weights(result.details["rows"])
    assert list(table) == ["base", "step-2", "final"]
    for name, metrics in table.items():
        for metric in METRICS:
            assert isinstance(metrics[metric], float) and isinstance(metrics[f"{metric}_std"], float), (name, metric)
        assert -1.0 <= metrics["dino"] <= 1.0 and 0.0 <= metrics["div"] <= 2.0 and metrics["clip_t"] >= 0.0
    assert result.details["best_by_dino"] == rank_weights(result.details["rows"], "dino")[0]

    folder = f"evaluate/{result.key}"
    saved = store.read_json(f"{folder}/weights/final/result.json")["subject"]
    assert [p["prompt"] for p in saved["prompts"]] == [
        "a sks toy in the jungle", "a sks toy with a city in the background", "a sks toy floating on top of water",
        "a red sks toy", "a cube shaped sks toy", "a sks toy on a red table"]
    assert len(saved["pres"]) == 2
    assert store.exists(f"{folder}/weights/final/protocol/p05-seed6.png")
    assert store.exists(f"{folder}/weights/final/protocol/class-seed5.png")
    for picture in ("subject_trend.png", "prompt_extremes.png"):
        assert store.exists(f"{folder}/{picture}"), picture
    report = store.read_bytes(f"{folder}/report.md").decode()
    assert "## Subject fidelity (DreamBooth protocol)" in report and "PRES: DINO similarity" in report
    assert "![prompt_extremes.png](prompt_extremes.png)" in report and "final, by DINO: best" in report

    # The real images' embeddings were stored by content digest: a second evaluation computes none.
    embeddings = store.list("evaluate/embeddings")
    assert len(embeddings) == 2  # one folder per model fingerprint (DINO, CLIP)
    assert all(len(store.list(path)) == 3 for path in embeddings)
    again, worked = evaluate_stage(config, store, train, eval_set)
    assert not worked and again == result


def test_protocol_settings_change_the_evaluate_key_only_when_the_protocol_is_on(protocol_run) -> None:
    config, _, train, eval_set = protocol_run
    training = config.training
    key = evaluate_key(training, train, eval_set)
    more_images = training.model_copy(update={"evaluation_images_per_prompt": 3})
    assert evaluate_key(more_images, train, eval_set) != key
    off = training.model_copy(update={"evaluation_prompt_set": "none", "evaluation_prompt": None})
    assert evaluate_key(off.model_copy(update={"evaluation_images_per_prompt": 3}), train, eval_set) \
        == evaluate_key(off, train, eval_set)
