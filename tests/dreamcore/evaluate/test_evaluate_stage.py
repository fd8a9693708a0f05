"""The evaluate stage on a tiny LoRA training: base vs checkpoints vs export, resumable, idempotent, report."""

from __future__ import annotations

import pytest

from dreamcore.cache.batches import held_out_rows as held_out
from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.drawing.weights import WeightsRef, applied
from dreamcore.evaluate.eval_set import EvalSet
from dreamcore.evaluate.stage import evaluate_stage
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource, collate, demo_samples
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import find_train_result, train_stage


@pytest.fixture(scope="module")
def trained(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate-stage")
    samples = demo_samples(tiny_models["sd"], tmp / "demo", subjects=3, regularisation=0)
    root = str(tmp / "artifacts")
    config = RunConfig(
        training={"pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x",
                  "mixed_precision": "no", "max_train_steps": 4, "checkpointing_steps": 2, "train_batch_size": 2,
                  "lora_rank": 4, "learning_rate": 1e-2, "optimizer": "adamw", "storage_root": root,
                  "validation_prompt": ["sks toy", "a photo of sks toy"], "num_validation_images": 2,
                  "validation_seed": 11, "validation_num_inference_steps": 2, "validation_resolution": 64,
                  "evaluation_type": "clip", "pretrained_evaluation_model_name_or_path": str(tiny_models["clip"]),
                  "eval_timesteps": 3},
        datasets=[DatasetSpec(id="subject", instance_data_dir="/data/subject")],
    )
    store = ArtifactStore(root)
    train = train_stage(plan_training(config, {"latents": "abc"}), store, InMemoryBatchSource(samples[:2], 2),
                        show_progress=False)
    eval_set = EvalSet([collate(samples[2:])], "demo", ["s2"], "demo-digest")
    return config, store, train, eval_set


def test_base_checkpoints_and_final_with_the_same_seeds(trained) -> None:
    config, store, train, eval_set = trained
    result, worked = evaluate_stage(config, store, train, eval_set)
    assert worked
    rows = {r["weights"]: r for r in result.details["rows"]}
    assert list(rows) == ["base", "step-2", "final"]
    assert all(r["images"] == 4 and r["clip_mean"] is not None for r in rows.values())
    assert len({r["eval_loss"] for r in rows.values()}) == 3  # training moved the eval loss at every checkpoint
    folder = f"evaluate/{result.key}"
    for name in rows:
        saved = store.read_json(f"{folder}/weights/{name}/result.json")
        assert [(i["prompt_index"], i["seed"]) for i in saved["images"]] == [(0, 11), (0, 12), (1, 11), (1, 12)]
    for file in ("grid.png", "eval_loss.png", "trend.png", "training_loss.png", "report.md", "report.html",
                 "summary.json"):
        assert store.exists(f"{folder}/{file}"), file
    report = store.read_bytes(f"{folder}/report.md").decode()
    assert "![grid.png](grid.png)" in report and "| step-2 | 2 | 4 |" in report
    assert "data:image/png;base64," in store.read_bytes(f"{folder}/report.html").decode()


def test_second_run_does_no_work_and_a_lost_part_alone_is_redone(trained, monkeypatch) -> None:
    config, store, train, eval_set = trained
    first, _ = evaluate_stage(config, store, train, eval_set)
    again, worked = evaluate_stage(config, store, train, eval_set)
    assert not worked and again == first
    folder = f"evaluate/{first.key}"
    store.remove(f"{folder}/_SUCCESS.json")
    store.remove(f"{folder}/weights/step-2")
    evaluated = []
    from dreamcore.evaluate import evaluation

    original = evaluation.Evaluator.evaluate
    monkeypatch.setattr(evaluation.Evaluator, "evaluate",
                        lambda self, *a, **k: evaluated.append(a[4]) or original(self, *a, **k))
    resumed, worked = evaluate_stage(config, store, train, eval_set)
    assert worked and evaluated == ["step-2"]
    assert resumed.details["rows"] == first.details["rows"]


def test_exported_lora_gives_what_the_last_checkpoint_gives(trained, tiny_models, sd_pipe) -> None:
    """pipe.load_lora_weights on the export == the trained tensors put back through the adapter builder."""
    from dreamcore.evaluate.eval_loss import compute_eval_loss
    from dreamcore.models import family_named

    config, store, train, eval_set = trained
    scheduler = family_named(train.details["family"]).objective.noise_scheduler(
        sd_pipe.scheduler.config, config.training.prediction_type, where="tiny sd")
    prediction = scheduler.config.prediction_type
    checkpoint = WeightsRef("step-4", "checkpoint", 4, store.uri(f"train/{train.key}/checkpoints/step-00000004"))
    export = WeightsRef("final", "diffusers_lora", 4, train.details["exports"]["diffusers_lora"])
    losses = {}
    for ref in (WeightsRef("base", "base"), checkpoint, export, WeightsRef("base-again", "base")):
        with applied(sd_pipe, ref, config.training, str(tiny_models["sd"])) as pipe:
            losses[ref.name] = compute_eval_loss(pipe.unet, scheduler, prediction, eval_set.batches, [100, 700]).mean
    assert losses["final"] == pytest.approx(losses["step-4"], rel=1e-5)
    assert losses["final"] != losses["base"]
    assert losses["base-again"] == losses["base"]  # the LoRA was unloaded again


def test_find_train_result_and_the_report_command(trained, capsys) -> None:
    from dreamcore.cli import main

    config, store, train, eval_set = trained
    assert find_train_result(config, store) == train
    result, _ = evaluate_stage(config, store, train, eval_set)
    store.remove(f"evaluate/{result.key}/report.md")
    assert main(["report", store.uri()]) == 0
    assert store.exists(f"evaluate/{result.key}/report.md")
    assert store.uri(f"evaluate/{result.key}/report.md") in capsys.readouterr().out


def test_held_out_rows_are_a_fixed_content_chosen_fraction() -> None:
    rows = [{"path": f"img{i}.png", "key": f"k{i}"} for i in range(10)]
    chosen = held_out(rows, 0.25)
    assert len(chosen) == 3 and chosen == held_out(list(reversed(rows)), 0.25)
    assert len(held_out(rows[:1], 0.5)) == 1 and len(held_out(rows[:2], 0.9)) == 1
    assert held_out(rows, 0.0) == []
