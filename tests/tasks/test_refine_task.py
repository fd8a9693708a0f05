"""The refine task: Cached on a rerun (same key as the stage), pairs table and side-by-side grid artifacts."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from dreamcore.config import RunConfig
from dreamcore.refine.stage import plan_refine
from tasks.refine import refine
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def _config(tiny_models, root: str, **training) -> RunConfig:
    return RunConfig.model_validate({"training": {
        "pretrained_model_name_or_path": str(tiny_models["sdxl"]), "storage_root": root, "mixed_precision": "no",
        "refiner_model_name_or_path": str(tiny_models["sdxl-refiner"]), "validation_prompt": "sks toy",
        "num_validation_images": 2, "validation_num_inference_steps": 3, **training},
        "datasets": [{"id": "subject", "instance_data_dir": root + "-images"}]})  # the refine stage reads no data


def _run_task(config: RunConfig):
    root = config.training.resolved_storage_root

    @flow
    def one_refine():
        return refine.with_options(result_storage=result_storage_for(root))(plan_refine(config, None), root, return_state=True)

    return one_refine(return_state=True).result(raise_on_failure=False)


def test_rerun_is_cached_and_artifacts_show_the_pairs(tiny_models, tmp_path):
    config = _config(tiny_models, str(tmp_path / "artifacts"))
    first = _run_task(config)
    assert first.name == "Completed", first.message
    result = first.result()
    assert result.counts["pairs"] == 2
    table = Artifact.get("refine-pairs")
    assert table is not None and "refined.png" in str(table.data) and "base.png" in str(table.data)
    assert Artifact.get("refine-grid") is not None
    markdown = Artifact.get("refine-grid-embedded")
    assert markdown is not None and "data:image/png;base64," in str(markdown.data)
    second = _run_task(config)
    assert second.name == "Cached" and second.result() == result


def test_a_base_model_as_refiner_fails_without_retrying(tiny_models, tmp_path, caplog):
    config = _config(tiny_models, str(tmp_path / "artifacts"), refiner_model_name_or_path=str(tiny_models["sdxl"]))
    state = _run_task(config)
    assert state.is_failed() and "not an SDXL refiner" in state.message
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]
