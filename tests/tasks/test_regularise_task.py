"""The class-images task: Cached on the second run, progress artifact at 100 %, sample grid published."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from dreamcore.config import RunConfig
from dreamcore.regularise import class_image_plan
from tasks.regularise import class_images_task
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def run_once(config: RunConfig, root: str):
    @flow
    def class_images_once():
        task = class_images_task.with_options(result_storage=result_storage_for(root))
        return task(class_image_plan(config), config, root, return_state=True)

    return class_images_once()


def test_second_run_is_cached_and_artifacts_are_published(tiny_models, tmp_path) -> None:
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": str(tiny_models["sd"]),
                "mixed_precision": "no",
                "class_images": {"prompt": "a photo of a toy", "count": 3, "num_inference_steps": 2, "batch_size": 2},
            },
            "datasets": [{"id": "subject", "instance_data_dir": str(tmp_path)}],
        }
    )
    root = str(tmp_path / "artifacts")
    first = run_once(config, root)
    assert first.name == "Completed" and first.result().counts == {"images": 3}
    progress = Artifact.get("class-images-progress-regularisation")
    assert progress is not None and float(progress.data) == 100.0
    samples = Artifact.get("class-images-samples-regularisation")
    assert samples.data.endswith("samples.png")
    assert "is_regularisation_data" in str(Artifact.get("class-images-regularisation").data)

    second = run_once(config, root)
    assert second.name == "Cached" and second.result() == first.result()
