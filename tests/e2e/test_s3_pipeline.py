"""The whole demo pipeline with its storage root on S3 (moto's server on 127.0.0.1, through s3fs):
every stage commits there, a rerun is all Cached, and no credential appears in any Prefect block,
log line or artifact."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from prefect.client.orchestration import get_client

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import SUCCESS_MARKER, ArtifactStore
from flows.dreambooth import dreambooth

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


async def _everything_prefect_stored() -> str:
    """Blocks (secrets included), logs and artifacts, as one searchable text."""
    async with get_client() as client:
        blocks = await client.read_block_documents(include_secrets=True)
        logs = await client.read_logs()
        artifacts = await client.read_artifacts()
    parts = [json.dumps(b.data, default=str) + str(b.name) for b in blocks]
    parts += [log.message for log in logs]
    parts += [json.dumps(a.data, default=str) + str(a.description) for a in artifacts]
    return "\n".join(parts)


def test_demo_pipeline_on_s3_keeps_credentials_out_of_prefect(s3_root, tmp_path) -> None:
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    config = config.model_copy(
        update={"training": config.training.model_copy(update={"storage_root": s3_root, "max_train_steps": 6})}
    )
    first = dreambooth(config)
    assert first["train"]["output_uri"].startswith(s3_root)
    store = ArtifactStore(s3_root)
    for stage in ("ingest", "train", "evaluate"):
        keys = store.list(stage)
        assert keys and all(store.exists(f"{k}/{SUCCESS_MARKER}") for k in keys), stage
    assert store.exists(f"train/{first['train']['key']}/export/diffusers/pytorch_lora_weights.safetensors")
    assert dreambooth(config) == first

    stored = asyncio.run(_everything_prefect_stored())
    assert stored  # the search covers real content
    for secret in (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]):
        assert secret not in stored
