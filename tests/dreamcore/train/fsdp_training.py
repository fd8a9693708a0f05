"""Run by test_fsdp_training under `torchrun --nproc_per_node 2`: several train stages on two CPU processes (gloo),
one after another in the same process group, each in its own artifact root.

argv: samples file, base config JSON, cases JSON, output folder. A case is {"name", "overrides", "stop_after"}:
`stop_after` N interrupts the training on every process right after its checkpoint of step N, then trains the same
stage again in fresh objects (a new Trainer, model, optimiser and batch source), which resumes from that checkpoint.
The main process writes <out>/<name>.json (per-step losses, the result, the checkpoint files) and
<out>/<name>.safetensors (the trained tensors as on_trained sees them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from dreamcore.config import TrainingConfig
from dreamcore.storage import ArtifactStore
from dreamcore.train.memory import InMemoryBatchSource
from dreamcore.train.plan import plan_training
from dreamcore.train.stage import train_stage
from dreamcore.train.trainer import Trainer, make_accelerator


class Interrupted(Exception):
    """Raised on every process after the checkpoint of the case's stop_after step."""


def _train(config: TrainingConfig, root: Path, samples, trained: dict):
    accelerator = make_accelerator(config)
    source = InMemoryBatchSource(samples, config.train_batch_size, seed=0)

    def on_trained(outcome) -> None:
        trained["state"] = outcome.adapter.trainable_state()
        trained["history"] = outcome.history

    result = train_stage(plan_training(config, {"latents": "d"}), ArtifactStore(str(root)), source,
                         accelerator=accelerator, on_trained=on_trained, show_progress=False)
    return accelerator, result


def run_case(case: dict, base: dict, samples, out: Path) -> None:
    config = TrainingConfig(**(base | case["overrides"]))
    root = out / "roots" / case["name"]
    trained: dict = {}
    stop_after = case.get("stop_after")
    checkpoint = Trainer._checkpoint
    if stop_after:
        def checkpoint_then_stop(self) -> None:
            checkpoint(self)
            if self.step == stop_after:
                raise Interrupted

        Trainer._checkpoint = checkpoint_then_stop
        try:
            _train(config, root, samples, trained)
            raise AssertionError("the interruption did not happen")
        except Interrupted:
            pass
        finally:
            Trainer._checkpoint = checkpoint
    accelerator, result = _train(config, root, samples, trained)
    if accelerator.is_main_process:
        save_file(trained["state"], str(out / f"{case['name']}.safetensors"))
        folder = root / "train" / result.key
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        report = {"losses": [entry["loss"] for entry in trained["history"]], "result": result.model_dump(),
                  "files": files, "world": accelerator.num_processes}
        (out / f"{case['name']}.json").write_text(json.dumps(report))
    accelerator.wait_for_everyone()


def main(samples_file: str, base_file: str, cases_file: str, out: str) -> None:
    torch.set_num_threads(1)
    samples = torch.load(samples_file, weights_only=False)
    base = json.loads(Path(base_file).read_text())
    for case in json.loads(Path(cases_file).read_text()):
        run_case(case, base, samples, Path(out))


if __name__ == "__main__":
    main(*sys.argv[1:5])
