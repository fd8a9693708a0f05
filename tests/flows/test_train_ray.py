"""ray_address: the train task runs the training on a Ray cluster through Ray Train (TorchTrainer). A local
cluster of two nodes on 127.0.0.1 (ray.cluster_utils.Cluster, one CPU each, so one worker per node) trains
under the flow exactly the weights two processes launched by torchrun on one machine train; a Ray Train worker
killed mid-training fails the attempt (max_failures 0) and the task's retry resumes from the newest checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.storage import ArtifactStore
from flows.cache import cache_flow
from flows.ingest import ingest_flow
from flows.train import train_flow

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness", "one_torch_thread")]
REPO = Path(__file__).resolve().parents[2]
LORA = "export/diffusers/pytorch_lora_weights.safetensors"


@pytest.fixture
def ray_cluster(monkeypatch):
    """Two Ray nodes on this machine, one CPU and a small object store each, no dashboard or usage stats."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    from ray.cluster_utils import Cluster

    node = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=node)
    cluster.add_node(**{k: v for k, v in node.items() if k != "include_dashboard"})
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_a_ray_cluster_trains_under_the_flow_what_torchrun_trains(tmp_path, ray_cluster):
    demo = write_demo_project(tmp_path / "demo")
    base = json.loads(demo.read_text()) | {"--max_train_steps": 3, "--checkpointing_steps": 2, "--learning_rate": 1e-2}
    demo.write_text(json.dumps(base))
    config = load_run_config(demo)
    store = ArtifactStore(config.training.resolved_storage_root)
    caches = cache_flow(config, ingest_flow(config))
    on_ray = config.training.model_copy(update={"ray_address": ray_cluster.address, "num_machines": 2})
    result = train_flow(config.model_copy(update={"training": on_ray}), caches["vae_cache"], caches["text_cache"])
    assert store.read_json(f"train/{result.key}/report.json")["steps"] == 3
    assert store.exists(f"_ray_train/dreamcore-train-{result.key}")  # Ray Train ran it (its run state)

    one_machine = demo.with_name("one.json")
    one_machine.write_text(json.dumps(base | {"--num_processes": 2}))
    by_hand = subprocess.run([sys.executable, "-m", "dreamcore.cli", "run", str(one_machine), "--stage", "train"],
                             env=os.environ | {"PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    reference = json.JSONDecoder().raw_decode(by_hand.stdout[by_hand.stdout.index("{"):])[0]["train"]
    ours = load_file(store.path(f"train/{result.key}/{LORA}"))
    theirs = load_file(store.path(f"train/{reference['key']}/{LORA}"))
    assert ours.keys() == theirs.keys()
    difference = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    assert difference == 0.0, difference
    assert any(not torch.equal(t, torch.zeros_like(t)) for t in ours.values())


def _kill_a_ray_train_worker_after_a_checkpoint(root: Path, killed: list[int], stop: threading.Event) -> None:
    """SIGKILL one Ray Train worker process once training has written its first complete checkpoint."""
    while not stop.is_set():
        if any(root.glob("train/*/checkpoints/*/_COMPLETE.json")):
            workers = [p for p in psutil.process_iter(["cmdline"])
                       if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])]
            if workers:
                workers[-1].kill()
                killed.append(workers[-1].pid)
                return
        time.sleep(0.1)


def test_a_killed_ray_worker_fails_the_attempt_and_the_retry_resumes(tmp_path, ray_cluster):
    demo = write_demo_project(tmp_path / "demo")
    demo.write_text(json.dumps(json.loads(demo.read_text()) | {"--max_train_steps": 8, "--checkpointing_steps": 1}))
    config = load_run_config(demo)
    store = ArtifactStore(config.training.resolved_storage_root)
    caches = cache_flow(config, ingest_flow(config))
    on_ray = config.training.model_copy(update={"ray_address": ray_cluster.address, "num_machines": 2})
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_ray_train_worker_after_a_checkpoint,
                              args=(Path(config.training.resolved_storage_root), killed, stop))
    killer.start()
    try:
        state = train_flow(config.model_copy(update={"training": on_ray}), caches["vae_cache"], caches["text_cache"],
                           return_state=True)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray Train worker was found to kill"
    assert state.is_completed()  # the task's retry trained on
    result = state.result()
    report = store.read_json(f"train/{result.key}/report.json")
    assert report["steps"] == 8 and 1 <= report["resumed_from"] < 8  # from the newest checkpoint, not from scratch
