"""The masks tasks: a second run is Cached, artifacts hold the coverage table; bad user masks fail without retry."""

from __future__ import annotations

import pytest
from PIL import Image
from prefect import flow
from prefect.artifacts import Artifact

from dreamcore.config import DatasetSpec, RunConfig
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import plan_ingest
from dreamcore.masks.runner import plan_masks
from dreamcore.storage import ArtifactStore
from tasks.ingest import ingest
from tasks.masks import check_masks_task, generate_masks_task
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


def run_generate(config: RunConfig, root: str):
    @flow
    def masks_once():
        storage = result_storage_for(root)
        image = config.dataset("subject")
        ingested = ingest.with_options(result_storage=storage)(plan_ingest(image), root)
        plan = plan_masks(ArtifactStore(root), image, ingested, config.training.mask_generation)
        return generate_masks_task.with_options(result_storage=storage)(plan, config, root, return_state=True)

    return masks_once()


def run_check(image: DatasetSpec, masks: DatasetSpec, root: str):
    @flow
    def check_once():
        storage = result_storage_for(root)
        ingested = ingest.with_options(result_storage=storage)(plan_ingest(image), root)
        plan = plan_masks(ArtifactStore(root), image, ingested, masks)
        return check_masks_task.with_options(result_storage=storage)(plan, root, return_state=True)

    return check_once(return_state=True).result(raise_on_failure=False)


def test_generate_task_is_cached_on_the_second_run_and_publishes_coverage(tiny_models, storage_root, tmp_path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    config = RunConfig.model_validate(
        {
            "training": {
                "pretrained_model_name_or_path": str(tiny_models["sd"]),
                "mask_generation": {"dataset": "subject", "prompt": "toy", "model": str(tiny_models["clipseg"])},
            },
            "datasets": [{"id": "subject", "instance_data_dir": str(demo.images_dir), "caption_strategy": "textfile"}],
        }
    )
    first = run_generate(config, storage_root)
    assert first.name == "Completed"
    second = run_generate(config, storage_root)
    assert second.name == "Cached" and second.result() == first.result()
    table = Artifact.get("masks-subject")
    assert table is not None and "toy_00.png" in str(table.data) and "coverage" in str(table.data)
    summary = Artifact.get("masks-summary-subject")
    assert "subject-masks" in str(summary.data)  # the config snippet


def test_check_task_fails_on_a_wrong_size_mask_without_retrying(tmp_path, caplog) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=2)
    Image.new("L", (10, 10), 255).save(demo.mask_paths[0])
    image = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile")
    masks = DatasetSpec(
        id="subject-masks", dataset_type="conditioning", conditioning_type="mask", instance_data_dir=str(demo.masks_dir)
    )
    state = run_check(image, masks, str(tmp_path / "artifacts"))
    assert state.is_failed()
    assert "mask toy_00.png is 10x10 but its image toy_00.png is 96x96" in state.message
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]
