"""Two CPU processes (torchrun, gloo): they train in step, and only the main process saves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("two_process_training.py")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_in_sync_and_save_exactly_once(make_config, sd_samples, tmp_path):
    # `accelerate launch --cpu --num_processes 2` silently starts ONE process here (it wants MPI for
    # multi-CPU); torchrun starts two and accelerate's Accelerator picks up the gloo group.
    torch.save(sd_samples, tmp_path / "samples.pt")
    config = make_config(max_train_steps=4, checkpointing_steps=2, learning_rate=1e-2)
    (tmp_path / "config.json").write_text(config.model_dump_json())
    out = tmp_path / "out"
    out.mkdir()
    root = tmp_path / "artifacts"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(SCRIPT),
               str(tmp_path / "samples.pt"), str(tmp_path / "config.json"), str(root), str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["trained_digest"] == ranks[1]["trained_digest"]  # gradients were averaged: same weights
    assert ranks[0]["result"] == ranks[1]["result"]
    # Both processes' batch streams advanced together: 4 steps x 2 processes x batch 2.
    assert [r["source_position"] for r in ranks] == [16, 16]
    assert ranks[1]["writes"] == []  # only the main process writes
    writes = ranks[0]["writes"]
    assert len(writes) == len(set(writes))  # and every file exactly once
    key = ranks[0]["result"]["key"]
    assert writes.count(f"train/{key}/_SUCCESS.json") == 1
    assert sum(w.endswith("/_COMPLETE.json") for w in writes) == 2  # checkpoints at steps 2 and 4
