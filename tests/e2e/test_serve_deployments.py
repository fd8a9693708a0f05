"""Against a real `prefect server`: serve the deployments, the schedule is registered, a run
triggered through the API completes."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.slow


async def _deployment(name: str):
    async with get_client() as client:
        try:
            return await client.read_deployment_by_name(name)
        except Exception:
            return None


async def _run_and_wait(deployment_id, parameters=None, timeout: float = 240):
    from prefect.deployments import run_deployment

    return await run_deployment(deployment_id, parameters=parameters, timeout=timeout, poll_interval=2)


async def _limit(name: str):
    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(name)


def test_served_deployment_is_scheduled_and_runs(served) -> None:
    server, config, process = served
    name = f"dreambooth/{config.parent.parent.name[:40]}"
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        # `prefect.serve` registers the deployments one after another: wait for each.
        deployment, retrain = (
            wait_for(lambda n=n: asyncio.run(_deployment(n)) or process.poll(), 120, f"deployment {n}")
            for n in (name, name.replace("dreambooth/", "retrain/"))
        )
        assert process.poll() is None, "dreamcore serve exited"
        assert [s.schedule.cron for s in retrain.schedules] == ["0 3 * * 0"]
        assert retrain.parameters["run_name"] == config.parent.parent.name[:40]
        assert deployment.parameters["config"]["training"]["pretrained_model_name_or_path"].endswith("models/sd")
        assert deployment.parameter_openapi_schema["properties"]["config"]
        assert asyncio.run(_limit("dreamcore-gpu")).limit == 1

        flow_run = asyncio.run(_run_and_wait(deployment.id))
        assert flow_run.state.is_completed(), flow_run.state
