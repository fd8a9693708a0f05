"""The sweep flow under the Prefect test harness: 3 points on the tiny demo model share one ingest and
cache, train, are evaluated and ranked, the winner is recorded with its export; a 4th point added to the
sweep trains only that point (the other three come back Cached)."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactCollectionFilter,
    ArtifactCollectionFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)

from dreamcore.config import ConfigError, load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from dreamcore.sweep import SweepSpec, sweep_points
from dreamcore.train.trainer import Trainer
from flows.sweep import sweep

pytestmark = pytest.mark.usefixtures("prefect_harness", "one_torch_thread")


@pytest.fixture
def trainings(monkeypatch) -> list[float]:
    """The learning rate of every training that really ran (set up its Trainer), in order."""
    seen, setup = [], Trainer.setup

    def recording(self):
        seen.append(self.config.learning_rate)
        return setup(self)

    monkeypatch.setattr(Trainer, "setup", recording)
    return seen


async def _latest(key: str):
    async with get_client() as client:
        found = await client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key])))
    assert len(found) == 1, key
    return found[0]


def _spec(rates: list[float], max_concurrent: int = 1) -> SweepSpec:
    return SweepSpec(name="lr", parameters={"learning_rate": rates}, rank_by=["eval_loss", "clip_mean"],
                     max_concurrent=max_concurrent, grid_runs=2)


async def _task_states(flow_run_id, name: str) -> list[str]:
    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.state.name for r in runs if r.name.startswith(name))


def test_sweep_ranks_records_the_winner_and_trains_only_a_new_point(tmp_path, trainings):
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    training = config.training.model_copy(update={"max_train_steps": 2, "checkpointing_steps": 2})
    config = config.model_copy(update={"training": training})
    store = ArtifactStore(config.training.resolved_storage_root)

    first = sweep(config, _spec([1e-4, 1e-3, 1e-2]))
    assert sorted(trainings) == [1e-4, 1e-3, 1e-2]
    assert [r["rank"] for r in first["ranked"]] == [1, 2, 3]
    losses = [r["metrics"]["eval_loss"] for r in first["ranked"]]
    assert losses == sorted(losses) and len(set(losses)) == 3  # ranked by eval loss, lower first
    assert len(store.list("ingest")) == 3 and len(store.list("text_cache")) == 1  # shared stages ran once
    assert len(store.list("train")) == 3
    best = store.read_json("runs/lr/best.json")
    assert best == first["best"] and best["point"] == first["ranked"][0]["point"]
    assert best["export_kind"] == "diffusers_lora" and store.fs.exists(f"{best['export']}/pytorch_lora_weights.safetensors")
    assert best["metrics"]["eval_loss"] == losses[0]
    shared = store.read_json("runs/lr/results.json")["shared"]  # what gc must keep for these runs
    assert store.list("text_cache") == [f"text_cache/{shared['cache']['text_cache']['key']}"]
    assert set(shared["cache"]["vae_cache"]) == {"subject", "regularisation"} and set(shared["ingest"]) >= {"subject"}

    table = json.loads(asyncio.run(_latest("sweep-lr")).data)
    assert [row["rank"] for row in table] == [1, 2, 3] and table[0]["learning_rate"] == best["values"]["learning_rate"]
    grid = asyncio.run(_latest("sweep-grid-lr"))
    assert "data:image/png;base64," in grid.data and store.exists("runs/lr/best_grid.png")

    state = sweep(config, _spec([1e-4, 1e-3, 1e-2, 3e-3], max_concurrent=2), return_state=True)
    second = state.result()  # two worker processes: the spy above sees nothing, the task states tell
    assert asyncio.run(_task_states(state.state_details.flow_run_id, "train")) == ["Cached"] * 3 + ["Completed"]
    assert asyncio.run(_task_states(state.state_details.flow_run_id, "evaluate")) == ["Cached"] * 3 + ["Completed"]
    assert len(second["ranked"]) == 4 and len(store.list("train")) == 4
    now = {r["point"]: r["metrics"] for r in second["ranked"]}
    assert all(now[r["point"]] == r["metrics"] for r in first["ranked"])  # the Cached points kept their scores
    assert store.read_json("runs/lr/best.json") == second["best"]


def test_sweep_points_are_validated_through_the_training_config(tmp_path):
    config = load_run_config(write_demo_project(tmp_path / "demo"))
    random = SweepSpec(name="r", mode="random", samples=5, seed=3,
                       parameters={"learning_rate": {"low": 1e-5, "high": 1e-2, "log": True}, "lora_rank": [2, 4, 8]})
    points = sweep_points(config, random)
    assert points == sweep_points(config, random) and len(points) == 5  # seeded: the same draws
    assert all(1e-5 <= p.config.training.learning_rate <= 1e-2 for p in points)
    assert {p.config.training.lora_rank for p in points} <= {2, 4, 8}
    with pytest.raises(ConfigError, match="parameters.cache_dtype.*cannot be swept"):
        sweep_points(config, SweepSpec(name="x", parameters={"cache_dtype": ["bf16"]}))
    with pytest.raises(ConfigError, match="lora_rank"):
        sweep_points(config, SweepSpec(name="x", parameters={"lora_rank": [-1]}))
