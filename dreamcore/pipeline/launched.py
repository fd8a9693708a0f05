"""Multi-process training under the train task: the launch command, and what every launched process runs.

The train task writes a job file (the train plan and the storage root), launches num_processes
copies of this module (`accelerate launch --multi_gpu` on CUDA; torchrun with gloo on CPU, where
`accelerate launch --cpu` would start a single process), and reads their output line by line. Every
process trains its share of the batches (train_on_caches); the main one prints a progress line per step
and alone commits the stage.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dreamcore.train.plan import TrainPlan

PROGRESS_PREFIX = "DREAMCORE_PROGRESS "


def launch_command(job_file: str | Path, num_processes: int, cuda: bool | None = None) -> list[str]:
    """The command that starts `num_processes` training processes on `job_file`."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    port = str(_free_port())
    target = ["-m", "dreamcore.pipeline.launched", str(job_file)]
    if cuda:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                str(num_processes), "--num_machines", "1", "--main_process_port", port, "--dynamo_backend", "no",
                *target]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(num_processes),
            "--master_addr", "127.0.0.1", "--master_port", port, *target]


def write_job(path: str | Path, plan: TrainPlan, storage_root: str) -> Path:
    """The job file every launched process reads: the train plan (config, caches, key) and the storage root."""
    Path(path).write_text(json.dumps({"plan": plan.model_dump(mode="json"), "storage_root": storage_root}))
    return Path(path)


def progress_entry(line: str) -> dict[str, Any] | None:
    """The step entry of a progress line, or None for any other output line."""
    return json.loads(line[len(PROGRESS_PREFIX):]) if line.startswith(PROGRESS_PREFIX) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(job_file: str) -> None:
    from dreamcore.pipeline.training import train_on_caches
    from dreamcore.storage import ArtifactStore
    from dreamcore.train.plan import TrainPlan

    job = json.loads(Path(job_file).read_text())
    plan = TrainPlan.model_validate(job["plan"])  # keyed once by the task: the launched processes never rekey

    def on_step(entry: dict[str, Any]) -> None:  # called on the main process only
        print(PROGRESS_PREFIX + json.dumps({"step": entry["step"], "loss": entry.get("loss")}), flush=True)

    result = train_on_caches(plan, ArtifactStore(job["storage_root"]), on_step=on_step, show_progress=False)
    print(f"committed train/{result.key}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
