"""The launch command of dreamcore.pipeline.launched for one and several machines: torchrun on CPU (run for real
by tests/flows/test_train_machines.py), accelerate launch on CUDA (not run here: no GPU), and which runs
launch at all."""

from __future__ import annotations

import pytest

from dreamcore.config.options.train import TrainOptions
from dreamcore.pipeline.launched import is_launched, launch_command


def _after(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_several_machines_rendezvous_at_machine_zero():
    training = TrainOptions(num_processes=2, num_machines=3, machine_rank=1, main_process_ip="10.0.0.5",
                            main_process_port=29600)
    cpu = launch_command("job.json", training, cuda=False)
    assert cpu[1:3] == ["-m", "torch.distributed.run"]
    assert [_after(cpu, f) for f in ("--nproc_per_node", "--nnodes", "--node_rank", "--master_addr", "--master_port")] \
        == ["2", "3", "1", "10.0.0.5", "29600"]
    gpu = launch_command("job.json", training, cuda=True)
    assert gpu[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"]
    # accelerate counts processes over all machines
    assert [_after(gpu, f) for f in ("--num_processes", "--num_machines", "--machine_rank", "--main_process_ip",
                                     "--main_process_port")] == ["6", "3", "1", "10.0.0.5", "29600"]
    assert gpu[-3:] == ["-m", "dreamcore.pipeline.launched", "job.json"]


def test_one_machine_takes_a_free_local_port_whatever_the_launch_keys_say():
    command = launch_command("job.json", TrainOptions(num_processes=2, main_process_ip="10.0.0.5"), cuda=False)
    assert _after(command, "--master_addr") == "127.0.0.1" and _after(command, "--nnodes") == "1"


def test_what_launches(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not is_launched(TrainOptions())
    assert is_launched(TrainOptions(num_processes=2)) and is_launched(TrainOptions(num_machines=2))
    monkeypatch.setenv("WORLD_SIZE", "2")  # already a launched process (torchrun by hand): trains in place
    assert not is_launched(TrainOptions(num_machines=2))


def test_a_machine_rank_beyond_the_machines_is_refused():
    with pytest.raises(ValueError, match="machine_rank 2 is not below num_machines 2"):
        TrainOptions(num_machines=2, machine_rank=2)
