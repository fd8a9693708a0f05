"""num_processes 2 under a real flow: the train task launches two CPU processes (torchrun, gloo), streams
their progress into its log, commits once, and trains the same weights as two processes started by hand
under torchrun (`dreamcore run CONFIG --stage train`)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from safetensors.torch import load_file

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from flows.cache import cache_flow
from flows.ingest import ingest_flow
from flows.train import train_flow
from tests.conftest import free_port
from tests.training_fault import FAULT_FILE_ENV

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "one_torch_thread")]
REPO = Path(__file__).resolve().parents[2]
FAULT_SITE = REPO / "tests" / "e2e" / "training_fault_site"
LORA = "export/diffusers/pytorch_lora_weights.safetensors"


async def _logs(flow_run_id) -> list[str]:
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in sorted(logs, key=lambda log: log.timestamp)]


async def _step_logs(flow_run_id, expected: int) -> list[str]:
    """The flow run's 'step ...' log lines, once `expected` of them reached the API (sent in batches), or
    whatever arrived within 20 s."""
    for _ in range(40):
        steps = [message for message in await _logs(flow_run_id) if message.startswith("step ")]
        if len(steps) >= expected:
            return steps
        await asyncio.sleep(0.5)
    return steps


@pytest.fixture
def task_info_logs():
    """Task-run INFO lines reach the API (the suite logs WARNING and up)."""
    logger = logging.getLogger("prefect.task_runs")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_two_launched_processes_train_what_torchrun_trains(tmp_path, task_info_logs):
    config_path = write_demo_project(tmp_path / "demo")
    raw = json.loads(config_path.read_text()) | {"--max_train_steps": 4, "--checkpointing_steps": 2,
                                                  "--learning_rate": 1e-2}
    config_path.write_text(json.dumps(raw))
    config = load_run_config(config_path)
    launched = config.model_copy(update={"training": config.training.model_copy(update={"num_processes": 2})})
    store = ArtifactStore(config.training.resolved_storage_root)
    ingested = ingest_flow(config)
    caches = cache_flow(config, ingested)

    state = train_flow(launched, caches["vae_cache"], caches["text_cache"], return_state=True)
    result = state.result()
    assert result.counts["steps"] == 4
    assert store.read_json(f"train/{result.key}/report.json")["steps"] == 4
    streamed = asyncio.run(_step_logs(state.state_details.flow_run_id, 4))
    assert [m.split(",")[0] for m in streamed] == ["step 1", "step 2", "step 3", "step 4"]  # rank 0 only, once

    by_hand = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), "-m", "dreamcore.cli", "run", str(config_path), "--stage", "train"],
        env=os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=900)
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    # every rank prints its result: the first JSON document is enough
    reference = json.JSONDecoder().raw_decode(by_hand.stdout[by_hand.stdout.index("{"):])[0]["train"]
    assert reference["key"] != result.key  # num_processes 2 is in the launched run's key, not in the by-hand one's
    ours, theirs = load_file(store.path(f"train/{result.key}/{LORA}")), load_file(store.path(f"train/{reference['key']}/{LORA}"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert any(not torch.equal(t, torch.zeros_like(t)) for t in ours.values())


def test_a_failing_rank_fails_the_attempt_and_the_retry_resumes(tmp_path, monkeypatch, task_info_logs):
    # tests/e2e/training_fault_site arms a one-shot fault after step 1 in the launched processes' rank 0
    fault = tmp_path / "fault"
    fault.write_text("1")
    monkeypatch.setenv("PYTHONPATH", f"{FAULT_SITE}{os.pathsep}{REPO}")
    monkeypatch.setenv(FAULT_FILE_ENV, str(fault))
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    caches = cache_flow(config, ingest_flow(config))
    training = config.training.model_copy(update={"num_processes": 2, "max_train_steps": 3, "checkpointing_steps": 1})
    state = train_flow(config.model_copy(update={"training": training}), caches["vae_cache"], caches["text_cache"],
                       return_state=True)
    assert not fault.exists()  # the fault struck inside a launched process
    logs = asyncio.run(_logs(state.state_details.flow_run_id))
    failed = [m for m in logs if m.startswith("Task run failed with exception: RuntimeError('training with 2 processes "
                                              "failed (exit 1)")]
    assert failed and all("Retry 1/1" in m for m in failed)  # the rank's failure failed the attempt
    assert any("InjectedTrainingFault" in m for m in logs)  # rank 0's own error reached the task's log
    assert state.is_completed()  # the task's retry (a lost worker's remedy) resumed and finished
    store = ArtifactStore(config.training.resolved_storage_root)
    result = state.result()
    assert result.counts["steps"] == 3 and store.read_json(f"train/{result.key}/report.json")["resumed_from"] == 2
    assert [f for f in store.list("train") if store.exists(f"{f}/_SUCCESS.json")] == [f"train/{result.key}"]
