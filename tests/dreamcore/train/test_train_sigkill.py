"""A training process killed with SIGKILL loses at most `checkpointing_steps` steps, and the rerun resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import write_demo_project
from dreamcore.pipeline import run_stage_locally
from dreamcore.storage import ArtifactStore
from dreamcore.train import checkpoints as ckpt

EVERY = 5
STEPS = 30


def _demo_config(tmp_path):
    path = write_demo_project(tmp_path / "demo")
    document = json.loads(path.read_text())
    document |= {"--max_train_steps": STEPS, "--checkpointing_steps": EVERY, "--validation_disable": True}
    document.pop("--eval_steps_interval")  # no validation or eval loss during training: only the loop
    path.write_text(json.dumps(document))
    return path


def _shown_steps(stream, seen: list[int]) -> None:
    """The steps tqdm prints ("12/30 [") as they arrive on the process's stderr."""
    buffer = ""
    for chunk in iter(lambda: stream.read(256), ""):
        buffer = (buffer + chunk)[-4096:]
        seen.extend(int(m) for m in re.findall(rf"(\d+)/{STEPS} \[", buffer))
        buffer = buffer[-64:]


@pytest.mark.slow
def test_sigkill_loses_at_most_one_checkpoint_interval_and_the_rerun_resumes(tmp_path):
    config_path = _demo_config(tmp_path)
    config = load_run_config(config_path)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")  # the killed process only trains
    store = ArtifactStore(config.training.resolved_storage_root)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "dreamcore.cli", "run", str(config_path), "--stage", "train"],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    shown: list[int] = []
    reader = threading.Thread(target=_shown_steps, args=(process.stderr, shown), daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    folder = None
    while time.monotonic() < deadline and process.poll() is None:
        folders = store.list("train")
        folder = folders[0] if folders else None
        if folder and len(ckpt.checkpoint_steps(store, folder)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.4)  # kill between checkpoints (a few steps on), not right after one
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join(timeout=10)

    survived = ckpt.checkpoint_steps(store, folder)[-1]
    assert max(shown) - survived <= EVERY  # the steps the killed process had reached, less what was saved
    result = run_stage_locally(config, "train")["train"]
    report = store.read_json(f"train/{result['key']}/report.json")
    assert report["resumed_from"] == survived and report["steps"] == STEPS
    assert [entry["step"] for entry in report["history"]] == list(range(1, STEPS + 1))
