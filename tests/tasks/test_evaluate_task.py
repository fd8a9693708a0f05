"""The evaluate task on a real tiny run (ingest, caches, training): Cached on a rerun, artifacts published."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from dreamcore.config import RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.pipeline import plan_evaluating, run_ingest, run_train
from dreamcore.storage import ArtifactStore, StageResult
from tasks.evaluate import evaluate
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def build_run(tmp_path, tiny_models, root: str, with_eval_dataset: bool = True, **training) -> tuple[RunConfig, StageResult]:
    """Ingest, cache and train a tiny LoRA run (2 steps, checkpoint every step)."""
    subject = write_demo_dataset(tmp_path / "demo", n_images=4, include_masks=False)
    crop = {"resolution": 64, "crop": True, "crop_aspect": "square", "caption_strategy": "textfile"}
    datasets = [{"id": "subject", "instance_data_dir": str(subject.images_dir), **crop}]
    if with_eval_dataset:
        held = write_demo_dataset(tmp_path / "eval", n_images=2, seed=5, include_masks=False)
        datasets.append({"id": "holdout", "dataset_type": "eval", "instance_data_dir": str(held.images_dir), **crop})
    config = RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sd"]), "model_family": "sd1x", "mixed_precision": "no",
        "storage_root": root, "max_train_steps": 2, "checkpointing_steps": 1, "train_batch_size": 2, "lora_rank": 4,
        "learning_rate": 1e-2, "optimizer": "adamw", "validation_prompt": "sks toy", "validation_num_inference_steps": 2,
        "validation_resolution": 64, "eval_timesteps": 2, **training}, "datasets": datasets})
    store = ArtifactStore(root)
    run_ingest(config, store)
    return config, StageResult.model_validate(run_train(config, store)["train"])


def run_task(config: RunConfig, train_result: StageResult):
    root = config.training.resolved_storage_root

    @flow
    def one_evaluation():
        task = evaluate.with_options(result_storage=result_storage_for(root))
        return task(plan_evaluating(config, train_result), root, return_state=True)

    return one_evaluation(return_state=True).result(raise_on_failure=False)


def test_rerun_is_cached_and_artifacts_show_table_grid_and_report(tiny_models, tmp_path) -> None:
    config, train_result = build_run(tmp_path, tiny_models, str(tmp_path / "artifacts"))
    first = run_task(config, train_result)
    assert first.name == "Completed", first.message
    result = first.result()
    assert result.counts == {"weights": 3, "images": 3, "eval_samples": 2}
    assert result.details["eval_set"] == "eval datasets holdout"
    assert [r["weights"] for r in result.details["rows"]] == ["base", "step-1", "final"]
    table = Artifact.get("evaluate-summary")
    assert table is not None and "eval_loss" in str(table.data) and "step-1" in str(table.data)
    grid = Artifact.get("evaluate-grid")
    assert grid is not None and str(grid.data).endswith("grid.png")
    link = Artifact.get("evaluate-report")
    assert link is not None and "report.html" in str(link.data)
    pictures = Artifact.get("evaluate-pictures")
    assert pictures is not None and "data:image/png;base64," in str(pictures.data)
    second = run_task(config, train_result)
    assert second.name == "Cached" and second.result() == result


def test_protocol_metrics_are_published_as_a_table_and_the_rerun_is_cached(tiny_models, tmp_path) -> None:
    config, train_result = build_run(
        tmp_path, tiny_models, str(tmp_path / "artifacts"), with_eval_dataset=False,
        evaluation_prompt_set="dreambooth_object", evaluation_quick=True, evaluation_token="sks",
        evaluation_class="toy", evaluation_images_per_prompt=2, evaluation_dino_model=str(tiny_models["dino"]),
        pretrained_evaluation_model_name_or_path=str(tiny_models["clip"]))
    first = run_task(config, train_result)
    assert first.name == "Completed", first.message
    table = Artifact.get("evaluate-subject-fidelity")
    assert table is not None
    rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
    assert [r["weights"] for r in rows] == ["base", "step-1", "final"]
    assert all(isinstance(r[m], float) for r in rows for m in ("dino", "clip_i", "clip_t", "pres", "div", "dino_std"))
    assert "PRES: DINO similarity" in table.description
    for key in ("evaluate-subject-trend-plot", "evaluate-prompt-grid"):
        assert Artifact.get(key) is not None, key
    second = run_task(config, train_result)
    assert second.name == "Cached" and second.result() == first.result()
