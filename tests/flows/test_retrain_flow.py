"""The retrain flow in-process: the first run trains, an unchanged rerun does nothing, and after a new
image with continue_from_previous the new training starts from the previous run's exported weights."""

from __future__ import annotations

import asyncio

import pytest
import torch
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from safetensors.torch import load_file

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from dreamcore.train.trainer import Trainer
from flows.retrain import retrain

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


async def _subflow_names(flow_run_id) -> list[str]:
    async with get_client() as client:
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        return [child.name for child in children]


@pytest.fixture
def started_weights(monkeypatch) -> list[dict]:
    """The trainable tensors of every Trainer right after setup (step 0), in the order they were set up."""
    seen, setup = [], Trainer.setup

    def recording(self):
        trainer = setup(self)
        seen.append(trainer.adapter.trainable_state())
        return trainer

    monkeypatch.setattr(Trainer, "setup", recording)
    return seen


def _add_mirrored_image(demo) -> None:
    images, masks = demo / "data" / "instance_images", demo / "data" / "instance_masks"
    Image.open(images / "toy_00.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(images / "toy_new.png")
    (images / "toy_new.txt").write_text("a photo of sks toy, mirrored\n")
    Image.open(masks / "toy_00.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(masks / "toy_new.png")


def test_retrain_continues_from_the_previous_export(tmp_path, started_weights):
    config_path = write_demo_project(tmp_path / "demo")
    config = load_run_config(config_path)
    training = config.training.model_copy(update={"max_train_steps": 2, "checkpointing_steps": 2})
    config = config.model_copy(update={"training": training})
    store = ArtifactStore(config.training.resolved_storage_root)

    first = retrain(config, run_name="weekly", continue_from_previous=True)  # nothing earlier: a fresh adapter
    assert first["retrained"] and len(started_weights) == 1
    previous = first["results"]["train"]
    assert previous["details"]["exports"]["diffusers_lora"] == f"{previous['output_uri']}/export/diffusers"

    unchanged = retrain(config, run_name="weekly", continue_from_previous=True, return_state=True)
    assert unchanged.result()["retrained"] is False and len(started_weights) == 1
    assert asyncio.run(_subflow_names(unchanged.state_details.flow_run_id)) == []

    _add_mirrored_image(config_path.parent)
    third = retrain(config, run_name="weekly", continue_from_previous=True)
    assert third["retrained"] and len(started_weights) == 2
    trained = load_file(store.path(f"train/{previous['key']}/checkpoints/step-00000002/trainable.safetensors"))
    start = started_weights[1]
    assert start.keys() == trained.keys()
    assert all(torch.equal(start[name], trained[name]) for name in trained)  # step 0 = the previous export
    assert any(not torch.equal(started_weights[0][name], trained[name]) for name in trained)  # not a fresh init
    new = third["results"]["train"]
    assert new["key"] != previous["key"] and new["counts"]["steps"] == 2
    report = store.read_json(f"train/{new['key']}/report.json")
    assert report["resumed_from"] is None
