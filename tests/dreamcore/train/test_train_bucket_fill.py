"""A train_batch_size that no aspect bucket of a dataset can fill: refused in one line (SimpleTuner's
"zero usable batches"), or with allow_dataset_oversubscription padded, logged and in the train report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dreamcore.config import load_run_config
from dreamcore.demo import DEMO_CLASS_IMAGES, write_demo_project
from dreamcore.pipeline import run_stage_locally


def train(path) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "dreamcore.cli", "run", str(path), "--stage", "train"],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_a_batch_no_bucket_can_fill_is_refused_or_padded_and_reported(tmp_path) -> None:
    path = write_demo_project(tmp_path / "demo")
    document = json.loads(path.read_text())
    batch = DEMO_CLASS_IMAGES + 2  # 6 class images: no bucket of theirs can fill a batch of 8
    document |= {"--max_train_steps": 2, "--checkpointing_steps": 2, "--validation_disable": True,
                 "--train_batch_size": batch}
    document.pop("--eval_steps_interval")
    path.write_text(json.dumps(document))
    config = load_run_config(path)
    run_stage_locally(config, "ingest")
    run_stage_locally(config, "cache")

    refused = train(path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: dataset 'regularisation' produces zero full batches of train_batch_size {batch}")
    assert "allow_dataset_oversubscription" in line

    document["--allow_dataset_oversubscription"] = True
    path.write_text(json.dumps(document))
    padded = train(path)
    assert padded.returncode == 0, padded.stderr[-3000:]
    assert "'regularisation': allow_dataset_oversubscription repeats" in padded.stderr
    result = json.loads(padded.stdout)["train"]
    report = json.loads((tmp_path / "demo" / "artifacts" / "train" / result["key"] / "report.json").read_text())
    regularisation = report["sampling"]["regularisation"]
    assert regularisation["padded_buckets"] and min(regularisation["padded_buckets"].values()) >= 2
    assert "short_buckets" not in regularisation
