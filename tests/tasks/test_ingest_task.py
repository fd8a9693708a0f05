"""The ingest task: Prefect cache hits on unchanged data, on local and S3 storage, plus its artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from prefect import flow

from dreamcore.config import DatasetSpec
from dreamcore.data.demo import write_demo_dataset
from dreamcore.data.ingest import plan_ingest
from dreamcore.storage import ArtifactStore
from tasks.ingest import ingest
from tasks.results import result_storage_for

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run_ingest_once(spec: DatasetSpec, root: str):
    """Run the task inside a flow and return the task's final state."""

    @flow
    def one_ingest():
        task = ingest.with_options(result_storage=result_storage_for(root))
        return task(plan_ingest(spec), root, return_state=True)

    return one_ingest(return_state=True).result(raise_on_failure=False)


def test_unchanged_data_is_a_cache_hit_and_changed_data_is_not(storage_root: str, tmp_path: Path) -> None:
    demo = write_demo_dataset(tmp_path / "demo", n_images=3)
    spec = DatasetSpec(id="subject", instance_data_dir=str(demo.images_dir), caption_strategy="textfile")
    first = run_ingest_once(spec, storage_root)
    assert first.is_completed() and first.name == "Completed"
    result = first.result()
    second = run_ingest_once(spec, storage_root)
    assert second.name == "Cached"
    assert second.result() == result

    Image.new("RGB", (100, 80), (0, 0, 255)).save(demo.image_paths[-1])
    third = run_ingest_once(spec, storage_root)
    assert third.name == "Completed"
    assert third.result().key != result.key
    assert ArtifactStore(storage_root).exists(third.result().details["manifest"])


def test_empty_dataset_fails_the_task_without_retrying(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "nothing-usable"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"")
    spec = DatasetSpec(id="broken", instance_data_dir=str(folder))
    state = run_ingest_once(spec, str(tmp_path / "artifacts"))
    assert state.is_failed()
    assert "dataset 'broken': no usable image" in state.message and "x.png: empty file" in state.message
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]
