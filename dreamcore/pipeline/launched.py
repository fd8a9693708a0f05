"""Multi-process training under the train task: the launch command, and what every launched process runs.

The train task (and `dreamcore run CONFIG --stage train`) writes a job file (the train plan and the storage
root), launches num_processes copies of this module (`accelerate launch --multi_gpu` on CUDA; torchrun with
gloo on CPU, where `accelerate launch --cpu` would start a single process), and reads their output line by
line. With num_machines > 1 every machine does the same with its machine_rank and all processes rendezvous
at main_process_ip:main_process_port. Every process trains its share of the batches (train_on_caches); the
main one (rank 0, on machine 0) prints a progress line per step and alone commits the stage.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamcore.pipeline.training import train_on_caches
from dreamcore.storage import ArtifactStore, committed_result
from dreamcore.train.plan import TRAIN_STAGE, TrainPlan

if TYPE_CHECKING:
    from dreamcore.config.options.train import TrainOptions
    from dreamcore.storage import StageResult

PROGRESS_PREFIX = "DREAMCORE_PROGRESS "


def launch_command(job_file: str | Path, training: TrainOptions, cuda: bool | None = None) -> list[str]:
    """The command that starts this machine's `num_processes` training processes on `job_file`.

    With num_machines > 1 every machine runs it with its own machine_rank, and the processes of all machines
    rendezvous at main_process_ip:main_process_port (torchrun's static rendezvous, or accelerate's on CUDA);
    on one machine the rendezvous is a free local port.
    """
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    machines = training.num_machines
    address = training.main_process_ip if machines > 1 else "127.0.0.1"
    port = str(training.main_process_port if machines > 1 else _free_port())
    target = ["-m", "dreamcore.pipeline.launched", str(job_file)]
    if cuda:
        return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", str(training.num_processes * machines), "--num_machines", str(machines),
                "--machine_rank", str(training.machine_rank), "--main_process_ip", address,
                "--main_process_port", port, "--dynamo_backend", "no", *target]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(training.num_processes),
            "--nnodes", str(machines), "--node_rank", str(training.machine_rank),
            "--master_addr", address, "--master_port", port, *target]


def is_launched(training: TrainOptions) -> bool:
    """Whether this training runs in launched processes: several processes or machines, and this process is not
    already one of them (under torchrun or accelerate launch, WORLD_SIZE is set and it trains in place)."""
    return (training.num_processes > 1 or training.num_machines > 1) and "WORLD_SIZE" not in os.environ


def run_launched(plan: TrainPlan, storage_root: str, *, on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_line: Callable[[str], None] = print) -> StageResult:
    """Train the plan in this machine's launched processes and return the committed result; their output lines go
    to `on_line`, the main process's step entries to `on_step`. Any rank failing fails the launch (RuntimeError
    with the last output lines)."""
    training = plan.training
    with tempfile.TemporaryDirectory(prefix="dreamcore-train-") as folder:
        job = write_job(f"{folder}/job.json", plan, storage_root)
        command = launch_command(job, training)
        on_line(f"launching {training.num_processes} training processes on machine {training.machine_rank} of "
                f"{training.num_machines}: " + " ".join(command[1:4]))
        tail: deque[str] = deque(maxlen=40)
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                              env=os.environ | {"PYTHONUNBUFFERED": "1"}) as process:
            for line in process.stdout:
                line = line.rstrip()
                entry = progress_entry(line)
                if entry is not None:
                    if on_step is not None:
                        on_step(entry)
                    on_line(f"step {entry['step']}, loss {entry['loss']}")
                elif line:
                    tail.append(line)
                    on_line(line)
        if process.returncode != 0:
            raise RuntimeError(f"training with {training.num_processes} processes failed (exit "
                               f"{process.returncode}); last output:\n" + "\n".join(tail))
    result = committed_result(ArtifactStore(storage_root), TRAIN_STAGE, plan.key)
    if result is None:
        raise RuntimeError(f"the launched training exited cleanly but train/{plan.key} is not committed")
    return result


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
    job = json.loads(Path(job_file).read_text())
    plan = TrainPlan.model_validate(job["plan"])  # keyed once by the task: the launched processes never rekey

    def on_step(entry: dict[str, Any]) -> None:  # called on the main process only
        print(PROGRESS_PREFIX + json.dumps({"step": entry["step"], "loss": entry.get("loss")}), flush=True)

    result = train_on_caches(plan, ArtifactStore(job["storage_root"]), on_step=on_step, show_progress=False)
    print(f"committed train/{result.key}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
