"""Against a real `prefect server` and `dreamcore serve`: a failed run retried through the API (as
the UI's Retry does) reruns only the failed stage and resumes training from its checkpoint; the
retrain deployment does nothing without changes and, after one image is added, reruns only the
stages that image touches."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Scheduled

from dreamcore.config import load_run_config
from dreamcore.storage import ArtifactStore
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.slow


async def _deployment_id(name: str):
    async with get_client() as client:
        try:
            return (await client.read_deployment_by_name(name)).id
        except Exception:
            return None


async def _flow_run(flow_run_id):
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


async def _retry_like_the_ui(flow_run_id) -> None:
    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, Scheduled(name="AwaitingRetry"), force=True)


async def _task_states(flow_run_id, since=None) -> dict[str, list[str]]:
    """Task run name -> state names of its runs under a flow run, subflows included; with `since`,
    only task runs created after it (a retried flow run keeps its first attempt's runs). A name can
    run twice: the masks flow ingests the subject, then the ingest flow finds it Cached."""
    async with get_client() as client:
        pending, states = [flow_run_id], {}
        while pending:
            current = pending.pop()
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[current])))
            for run in runs:
                if run.state.state_details.child_flow_run_id is None and (since is None or run.created > since):
                    states.setdefault(run.name, []).append(run.state.name)
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[current]))
            )
            pending.extend(child.id for child in children)
        return states


def _run(deployment_id):
    return run_deployment(deployment_id, timeout=300, poll_interval=2)


def test_retry_of_a_failed_run_reruns_only_training_from_its_checkpoint(served, tmp_path) -> None:
    server, config_path, _ = served
    name = config_path.parent.parent.name[:40]
    (tmp_path / "training-fault").write_text("12")  # training dies once, after its step-10 checkpoint
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        deployment = wait_for(lambda: asyncio.run(_deployment_id(f"dreambooth/{name}")), 120, "the deployment")
        failed = _run(deployment)
        assert failed.state.is_failed(), failed.state
        first = asyncio.run(_task_states(failed.id))
        assert [s for n, s in first.items() if n.startswith("train")] == [["Failed"]]

        retried_at = asyncio.run(_flow_run(failed.id)).state.timestamp
        asyncio.run(_retry_like_the_ui(failed.id))
        finished = wait_for(
            lambda: (run := asyncio.run(_flow_run(failed.id))).state.is_final() and run, 300, "the retried run", 2
        )
        assert finished.state.is_completed(), finished.state
        retried = asyncio.run(_task_states(failed.id, since=retried_at))
        upstream = {n: seen for n, seen in retried.items() if not n.startswith(("train", "evaluate"))}
        assert upstream and {s for seen in upstream.values() for s in seen} == {"Cached"}, retried
        assert [seen for n, seen in retried.items() if n.startswith("train")] == [["Completed"]]

    config = load_run_config(config_path)
    store = ArtifactStore(config.training.resolved_storage_root)
    (train_key,) = [p.split("/")[-1] for p in store.list("train")]
    report = store.read_json(f"train/{train_key}/report.json")
    assert report["resumed_from"] == 10 and report["steps"] == config.training.max_train_steps


def test_retrain_does_nothing_without_changes_and_then_only_what_one_new_image_touches(served) -> None:
    server, config_path, _ = served
    name = config_path.parent.parent.name[:40]
    demo = config_path.parent
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        deployment = wait_for(lambda: asyncio.run(_deployment_id(f"retrain/{name}")), 120, "the retrain deployment")
        first = _run(deployment)
        assert first.state.is_completed(), first.state
        unchanged = _run(deployment)
        assert unchanged.state.is_completed()
        assert asyncio.run(_task_states(unchanged.id)) == {"detect-changes": ["Completed"]}  # no pipeline ran

        images, masks = demo / "data" / "instance_images", demo / "data" / "instance_masks"
        shutil.copy(images / "toy_00.png", images / "toy_new.png")
        Image.open(images / "toy_new.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(images / "toy_new.png")
        (images / "toy_new.txt").write_text("a photo of sks toy, mirrored\n")
        Image.open(masks / "toy_00.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(masks / "toy_new.png")
        changed = _run(deployment)
        assert changed.state.is_completed(), changed.state
        states = asyncio.run(_task_states(changed.id))

    reran = {n for n, seen in states.items() if "Completed" in seen}
    assert {n for n, seen in states.items() if set(seen) == {"Cached"}} == {
        "ingest-regularisation",
        "vae-cache-regularisation",
    }
    expected = {"detect-changes", "promote-or-reject", "ingest-subject", "ingest-subject-masks", "mask-check-subject",
                "vae-cache-subject", "text-cache"}
    assert expected <= reran
    assert {n.split("-")[0] for n in reran - expected} == {"train", "evaluate"}
