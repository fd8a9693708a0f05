"""The train task: Cached on a rerun, progress artifact and loss table, no retry on bad config."""

from __future__ import annotations

import logging

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from dreamcore.config import RunConfig
from dreamcore.pipeline import CacheResults, plan_training_on_caches
from tasks.results import result_storage_for
from tasks.train import GPU_SLOT, loss_table, train

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _with_training(config: RunConfig, **training) -> RunConfig:
    return config.model_copy(update={"training": config.training.model_copy(update=training)})


def _run_task(config: RunConfig, vae, text):
    root = config.training.resolved_storage_root

    @flow
    def one_training():
        task = train.with_options(result_storage=result_storage_for(root))
        plan = plan_training_on_caches(config, CacheResults(vae_cache=vae, text_cache=text))
        return task(plan, root, return_state=True)

    return one_training(return_state=True).result(raise_on_failure=False)


def test_rerun_is_cached_and_artifacts_show_progress_and_losses(cached_demo):
    config, vae, text = cached_demo
    config = _with_training(config, max_train_steps=3)
    first = _run_task(config, vae, text)
    assert first.name == "Completed", first.message
    result = first.result()
    assert result.counts["steps"] == 3 and result.details["exports"]["diffusers_lora"].endswith("export/diffusers")
    table = Artifact.get("train-loss")
    assert table is not None and "regularisation_loss" in str(table.data) and "subject_loss" in str(table.data)
    progress = Artifact.get("train-progress")
    assert progress is not None and float(progress.data) == 100.0
    second = _run_task(config, vae, text)
    assert second.name == "Cached" and second.result() == result


def test_bad_adapter_config_fails_without_retrying(cached_demo, caplog):
    config, vae, text = cached_demo
    config = _with_training(config, peft_lora_target_modules=["no_such_layer"])
    state = _run_task(config, vae, text)
    assert state.is_failed() and "match no UNet module" in state.message
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]


def test_the_gpu_slot_is_taken_where_the_limit_exists_and_its_absence_said_at_info(cached_demo, caplog):
    """A server without the dreamcore-gpu limit (a temporary one, tests) trains with one INFO line, not Prefect's
    warning on every run; with the limit (`dreamcore serve` creates it) the slot is taken and given back, and the
    run's log marks both (a fleet's trainings line up by them: tests/e2e/test_worker_fleet.py)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    config, vae, text = cached_demo

    def gpu_lines(state) -> list[tuple[str, str]]:
        assert state.name == "Completed", state.message
        lines = [(r.levelname, r.getMessage()) for r in caplog.records if GPU_SLOT in r.getMessage()]
        caplog.clear()
        return lines

    with caplog.at_level(logging.INFO, logger="prefect.task_runs"):  # the suite runs Prefect at WARNING
        without = gpu_lines(_run_task(_with_training(config, max_train_steps=1), vae, text))
        assert without == [("INFO", f"no {GPU_SLOT!r} concurrency limit on this Prefect server: training takes "
                            "no GPU slot (`dreamcore serve --gpus N` creates one with N slots)")]
        with get_client(sync_client=True) as client:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=GPU_SLOT, limit=1))
            try:
                assert gpu_lines(_run_task(_with_training(config, max_train_steps=2), vae, text)) == [
                    ("INFO", f"this training holds a {GPU_SLOT} slot"),
                    ("INFO", f"this training released its {GPU_SLOT} slot")]
                assert client.read_global_concurrency_limit_by_name(GPU_SLOT).active_slots == 0  # given back
            finally:
                client.delete_global_concurrency_limit_by_name(GPU_SLOT)  # the harness is the session's


def test_loss_table_keeps_at_most_n_rows_and_the_last_step():
    history = [{"step": i, "loss": 1.0 / i, "lr": 0.1} for i in range(1, 1001)]
    rows = loss_table(history, rows=50)
    assert len(rows) <= 51 and rows[0]["step"] == 1 and rows[-1]["step"] == 1000
    assert rows[-1]["subject_loss"] is None  # every column present
