"""Two `dreamcore run --stage train` processes started together on one storage root: one trains, the
other waits on its lease and reuses the commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import run_stage_locally


@pytest.mark.slow
def test_two_processes_on_one_key_train_once(tmp_path) -> None:
    path = write_demo_project(tmp_path / "demo")
    document = json.loads(path.read_text())
    document |= {"--max_train_steps": 6, "--checkpointing_steps": 3, "--validation_disable": True}
    document.pop("--eval_steps_interval")
    path.write_text(json.dumps(document))
    config = load_run_config(path)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "dreamcore.cli", "run", str(path), "--stage", "train"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-3000:] for _, err in outputs]
    results = [json.loads(out)["train"] for out, _ in outputs]
    assert results[0] == results[1]
    waited = [err for _, err in outputs if "is being computed by" in err]
    assert len(waited) == 1, [err[-2000:] for _, err in outputs]
    assert "reusing it" in waited[0]
    trained = [err for _, err in outputs if "is being computed by" not in err]
    assert "6/6 [" in trained[0] and "6/6 [" not in waited[0]  # only the holder showed training progress
    assert not list((tmp_path / "demo").rglob("_leases/train/*/*.json"))  # released
