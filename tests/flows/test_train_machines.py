"""SimpleTuner's launch keys: two "machines" (num_machines 2, machine_rank 0 and 1, one process each, both on
127.0.0.1) each run `dreamcore run CONFIG --stage train`; their processes rendezvous through torch.distributed
(torchrun's static rendezvous, gloo) and train exactly the weights of two processes on one machine
(num_processes 2, launched by the same command). Only rank 0 commits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import run_stages_locally
from dreamcore.storage import ArtifactStore
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
REPO = Path(__file__).resolve().parents[2]
LORA = "export/diffusers/pytorch_lora_weights.safetensors"
ENV = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _config(base: dict, path: Path, **keys) -> Path:
    path.write_text(json.dumps(base | {f"--{key}": value for key, value in keys.items()}))
    return path


def _train(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dreamcore.cli", "run", str(config), "--stage", "train"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.JSONDecoder().raw_decode(out[out.index("{"):])[0]["train"]


def test_two_machines_train_what_two_processes_on_one_machine_train(tmp_path):
    demo = write_demo_project(tmp_path / "demo")
    base = json.loads(demo.read_text()) | {"--max_train_steps": 3, "--checkpointing_steps": 2,
                                           "--learning_rate": 1e-2}
    config = load_run_config(_config(base, demo))
    store = ArtifactStore(config.training.resolved_storage_root)
    run_stages_locally(config, ["ingest", "cache"])  # both machines read the same committed caches (a shared root)

    one_machine = _finished(_train(_config(base, demo.with_name("one.json"), num_processes=2)))
    port = free_port()
    machines = [_train(_config(base, demo.with_name(f"machine{rank}.json"), num_machines=2, machine_rank=rank,
                               main_process_ip="127.0.0.1", main_process_port=port)) for rank in (0, 1)]
    results = [_finished(machine) for machine in machines]

    assert results[0]["key"] == results[1]["key"]  # machine_rank, address and port are not in the key
    assert results[0]["key"] != one_machine["key"]  # num_machines is (a larger effective batch)
    assert [f for f in store.list("train") if store.exists(f"{f}/_SUCCESS.json")] == sorted(
        [f"train/{one_machine['key']}", f"train/{results[0]['key']}"])
    assert store.read_json(f"train/{results[0]['key']}/report.json")["steps"] == 3
    ours = load_file(store.path(f"train/{results[0]['key']}/{LORA}"))
    theirs = load_file(store.path(f"train/{one_machine['key']}/{LORA}"))
    assert ours.keys() == theirs.keys()
    difference = max((ours[k] - theirs[k]).abs().max().item() for k in ours)
    assert difference == 0.0, difference  # exactly the same weights
    assert any(not torch.equal(t, torch.zeros_like(t)) for t in ours.values())
