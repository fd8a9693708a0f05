"""Serve the dreamcore deployments from this process: `dreamcore serve CONFIG [--cron ...]`.

`prefect.serve` registers each deployment with the Prefect API (PREFECT_API_URL) and runs the flow
runs it is sent, here, in subprocesses. Use it for one machine; for several, see
deployments/prefect.yaml (a process work pool + `prefect worker start`).
"""

from __future__ import annotations

import asyncio

from prefect import serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from dreamcore.config import RunConfig
from flows.dreambooth import dreambooth
from flows.gc import gc
from flows.retrain import retrain
from tasks.train import GPU_SLOT

DEFAULT_CRON = "0 3 * * 0"  # Sundays 03:00: weekly retraining on whatever images were added


def build_deployments(config: RunConfig, cron: str | None = DEFAULT_CRON, name: str = "default",
                      gc_cron: str | None = None) -> list:
    """The deployments `serve` registers, with the run config as their default parameters; gc deletes
    (apply) what neither this config nor a run record needs, on `gc_cron` when given."""
    parameters = {"config": config.model_dump(mode="json")}
    return [
        dreambooth.to_deployment(
            name=name,
            parameters=parameters,
            concurrency_limit=1,
            description="The whole Dreambooth pipeline; every finished stage is reused (Cached).",
            tags=["dreamcore"],
        ),
        retrain.to_deployment(
            name=name,
            parameters=parameters | {"run_name": name},
            cron=cron,
            concurrency_limit=1,
            description="Scheduled retraining: reruns only what new, changed or removed images touch.",
            tags=["dreamcore"],
        ),
        gc.to_deployment(
            name=name,
            parameters=parameters | {"apply": True},
            cron=gc_cron or None,
            concurrency_limit=1,
            description="Delete stage outputs and cache shards that neither the config nor a run record needs.",
            tags=["dreamcore"],
        ),
    ]


async def ensure_gpu_limit(slots: int = 1) -> None:
    """Create the global concurrency limit the train stage occupies (no-op if it exists)."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(GPU_SLOT)
        except Exception:  # prefect raises ObjectNotFound (no public type across versions)
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=GPU_SLOT, limit=slots)
            )


def serve_deployments(config: RunConfig, cron: str | None = DEFAULT_CRON, name: str = "default", gpus: int = 1,
                      gc_cron: str | None = None) -> None:
    """Register the deployments and run their flow runs until interrupted."""
    asyncio.run(ensure_gpu_limit(gpus))
    serve(*build_deployments(config, cron=cron, name=name, gc_cron=gc_cron))
