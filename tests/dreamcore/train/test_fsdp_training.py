"""FSDP2 (fsdp_enable) on two CPU processes (torchrun, gloo, 127.0.0.1) against data-parallel training (DDP).

One torchrun launch trains every case of CASES one after another (tiny SD 1.x, 5 steps, batch 2 per process, the
demo's 4 subject + 2 regularisation samples, so the base prediction runs through the sharded model too):
- LoRA and full fine-tune: the FSDP run's losses and final weights equal the DDP run's (float rounding);
- a sharded checkpoint (SHARDED_STATE_DICT, torch.distributed.checkpoint) and a FULL_STATE_DICT one: a run
  interrupted after its step-3 checkpoint and trained again resumes to exactly the uninterrupted run's weights
  (the sharded one also with CPU offload, activation checkpointing, no resharding and its own block classes);
- the exports: the same files holding the same tensor names as a single-process training's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dreamcore.config import TrainingConfig
from dreamcore.storage import ArtifactStore
from dreamcore.train.checkpoints import read_trainable
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage

SCRIPT = Path(__file__).with_name("fsdp_training.py")
FSDP = {"fsdp_enable": True}
FULL = {"model_type": "full", "learning_rate": 1e-4}
# Settings that change where tensors live and when they are gathered, not what is computed: the resumed LoRA run
# uses them and must still end exactly where the uninterrupted run (the defaults) ends.
PLACEMENT = {"fsdp_cpu_offload": True, "fsdp_activation_checkpointing": True, "fsdp_reshard_after_forward": False,
             "fsdp_transformer_layer_cls_to_wrap": "BasicTransformerBlock, ResnetBlock2D"}
CASES = [
    {"name": "ddp_lora", "overrides": {}},
    {"name": "fsdp_lora", "overrides": FSDP},
    {"name": "fsdp_lora_resumed", "overrides": FSDP | PLACEMENT, "stop_after": 3},
    {"name": "ddp_full", "overrides": FULL},
    {"name": "fsdp_full", "overrides": FULL | FSDP | {"fsdp_state_dict_type": "FULL_STATE_DICT"}},
    {"name": "fsdp_full_resumed", "overrides": FULL | FSDP | {"fsdp_state_dict_type": "FULL_STATE_DICT"},
     "stop_after": 3},
]
# float32 on one CPU: DDP all-reduces whole gradients, FSDP reduce-scatters shards (another summation order).
LOSS_TOLERANCE = 1e-5
# AdamW moves an element by up to about the learning rate a step whatever its gradient's size, so a rounding-level
# gradient difference on an element whose gradient is near zero moves it by a fraction of that: the weights agree
# to a tenth of the largest move 5 steps can make (measured: LoRA 9e-7 of 5e-4, full 3.2e-5 of 5e-5).
WEIGHT_TOLERANCE_OF_LARGEST_MOVE = 0.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def fsdp_runs(sd_samples, tiny_models, tmp_path_factory):
    """Every case of CASES trained on two processes: name -> (report, trained tensors); and the base config."""
    folder = tmp_path_factory.mktemp("fsdp")
    torch.save(sd_samples, folder / "samples.pt")
    base = dict(pretrained_model_name_or_path=str(tiny_models["sd"]), model_family="sd1x", mixed_precision="no",
                max_train_steps=5, checkpointing_steps=3, train_batch_size=2, lora_rank=4, learning_rate=1e-3,
                optimizer="adamw", seed=0, num_processes=2)
    (folder / "base.json").write_text(json.dumps(base))
    (folder / "cases.json").write_text(json.dumps(CASES))
    out = folder / "out"
    out.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(SCRIPT), str(folder / "samples.pt"), str(folder / "base.json"),
               str(folder / "cases.json"), str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    started = time.monotonic()
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-6000:]
    print(f"torchrun, {len(CASES)} trainings: {time.monotonic() - started:.1f} s")
    runs = {case["name"]: (json.loads((out / f"{case['name']}.json").read_text()),
                           load_file(str(out / f"{case['name']}.safetensors"))) for case in CASES}
    return runs, base, out / "roots"


def _max_difference(one: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> float:
    assert set(one) == set(other)
    return max(float((one[name] - other[name]).abs().max()) for name in one)


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_fsdp_trains_as_data_parallel_does(fsdp_runs, adapter):
    runs, base, _ = fsdp_runs
    (ddp, ddp_weights), (sharded, sharded_weights) = runs[f"ddp_{adapter}"], runs[f"fsdp_{adapter}"]
    assert ddp["world"] == sharded["world"] == 2
    assert len(ddp["losses"]) == len(sharded["losses"]) == 5
    loss_difference = max(abs(a - b) for a, b in zip(ddp["losses"], sharded["losses"], strict=True))
    weight_difference = _max_difference(ddp_weights, sharded_weights)
    print(f"{adapter}: max |loss FSDP - DDP| {loss_difference:.3g}, max |weight FSDP - DDP| {weight_difference:.3g}")
    assert loss_difference <= LOSS_TOLERANCE
    largest_move = (FULL["learning_rate"] if adapter == "full" else base["learning_rate"]) * len(ddp["losses"])
    assert weight_difference <= WEIGHT_TOLERANCE_OF_LARGEST_MOVE * largest_move


@pytest.mark.slow
@pytest.mark.parametrize(("name", "layout"), [("fsdp_lora", "sharded"), ("fsdp_full", "full")])
def test_an_fsdp_checkpoint_resumes_exactly(fsdp_runs, name, layout):
    runs, _, roots = fsdp_runs
    (whole, whole_weights), (resumed, resumed_weights) = runs[name], runs[f"{name}_resumed"]
    assert resumed["result"]["key"] == whole["result"]["key"]
    assert resumed["losses"] == whole["losses"]
    assert _max_difference(whole_weights, resumed_weights) == 0.0
    step3 = "checkpoints/step-00000003"
    if layout == "sharded":  # every process wrote its shards; no whole tensors
        assert f"{step3}/sharded/.metadata" in resumed["files"]
        assert sum(f.startswith(f"{step3}/sharded/") and f.endswith(".distcp") for f in resumed["files"]) == 2
        assert f"{step3}/trainable.safetensors" not in resumed["files"]
    else:
        assert f"{step3}/trainable.safetensors" in resumed["files"]
        assert not any(f.startswith(f"{step3}/sharded/") for f in resumed["files"])
    # The checkpoint reads back whole in one process (as evaluation applies a checkpoint), whatever its layout.
    folder = roots / f"{name}_resumed" / "train" / resumed["result"]["key"] / "checkpoints"
    final = read_trainable(folder / "step-00000005")
    assert _max_difference(final, resumed_weights) == 0.0
    assert set(read_trainable(folder / "step-00000003")) == set(final)


def _export_keys(result: dict) -> dict[str, set[str]]:
    """Exported file (relative to the export folder) -> its tensor names (safetensors) or None."""
    export = Path(ArtifactStore(result["output_uri"]).path("export"))
    keys = {}
    for file in sorted(p for p in export.rglob("*") if p.is_file()):
        names = None
        if file.suffix == ".safetensors":
            with safe_open(str(file), "pt") as opened:
                names = sorted(opened.keys())
        keys[file.relative_to(export).as_posix()] = names
    return keys


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["lora", "full"])
def test_fsdp_exports_as_a_single_process_training(fsdp_runs, sd_samples, adapter, tmp_path):
    runs, base, _ = fsdp_runs
    config = TrainingConfig(**(base | (FULL if adapter == "full" else {}) | {"num_processes": 1, "max_train_steps": 1}))
    single = train_stage(plan_training(config, {"latents": "d"}), ArtifactStore(str(tmp_path)),
                         InMemoryBatchSource(sd_samples, 2, seed=0), show_progress=False)
    sharded = runs[f"fsdp_{adapter}"][0]["result"]
    assert sorted(sharded["details"]["exports"]) == sorted(single.details["exports"])
    assert _export_keys(sharded) == _export_keys(single.model_dump())
