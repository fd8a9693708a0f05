"""Resumable training checkpoints in the artifact store: atomic, newest-complete-wins, keep the last K.

A checkpoint is a folder `<stage folder>/checkpoints/step-<8 digits>/` holding the trained tensors
(safetensors), the optimiser state (an FSDP run with SHARDED_STATE_DICT writes both as every process's shards
in `sharded/` instead: train/fsdp.py), the rest of the training state (LR schedule, EMA, every
process's RNG states) and the batch stream position (JSON). Each file is written atomically and
`_COMPLETE.json` is written last: a folder without it (a crash mid-save) is ignored on resume and
removed by the next prune.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dreamcore.storage import ArtifactStore

COMPLETE_MARKER = "_COMPLETE.json"
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
_FOLDER = re.compile(r"step-(\d{8})$")


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where it stopped."""

    step: int
    trainable: dict[str, torch.Tensor] | None  # adapter (or full UNet) tensors, CPU; None: sharded (FSDP)
    optimizer: dict[str, Any] | None  # None: sharded (FSDP)
    state: dict[str, Any]  # lr_scheduler, ema, rng (per process), tensors allowed
    progress: dict[str, Any]  # JSON: batch stream position, loss history


def checkpoints_folder(stage_folder: str) -> str:
    """Where a train stage keeps its checkpoints."""
    return f"{stage_folder}/checkpoints"


def checkpoint_steps(store: ArtifactStore, stage_folder: str) -> list[int]:
    """Steps of the complete checkpoints, oldest first."""
    steps = []
    for path in store.list(checkpoints_folder(stage_folder)):
        match = _FOLDER.search(path)
        if match and store.exists(f"{path}/{COMPLETE_MARKER}"):
            steps.append(int(match.group(1)))
    return sorted(steps)


def save_checkpoint(store: ArtifactStore, stage_folder: str, checkpoint: Checkpoint, keep_last: int | None,
                    fence: Callable[[], None] | None = None) -> str:
    """Write a checkpoint (marker last), then prune older ones beyond `keep_last`; returns its folder.
    `fence` (raises when this run lost its stage folder to another) is called before the writes and the prune."""
    from safetensors.torch import save

    if fence is not None:
        fence()
    folder = checkpoint_folder(stage_folder, checkpoint.step)
    if checkpoint.trainable is not None:
        store.write_bytes(f"{folder}/{TRAINABLE_FILE}", save(checkpoint.trainable))
    if checkpoint.optimizer is not None:
        store.write_bytes(f"{folder}/{OPTIMIZER_FILE}", _torch_bytes(checkpoint.optimizer))
    store.write_bytes(f"{folder}/state.pt", _torch_bytes(checkpoint.state))
    store.write_json(f"{folder}/progress.json", checkpoint.progress)
    store.write_json(f"{folder}/{COMPLETE_MARKER}", {"step": checkpoint.step})
    if fence is not None:
        fence()
    prune_checkpoints(store, stage_folder, keep_last)
    return folder


def load_checkpoint(store: ArtifactStore, stage_folder: str, step: int) -> Checkpoint:
    """Read back the complete checkpoint of `step` (trainable and optimizer None when they are sharded)."""
    from safetensors.torch import load

    folder = checkpoint_folder(stage_folder, step)
    whole = store.exists(f"{folder}/{TRAINABLE_FILE}")
    return Checkpoint(
        step=step,
        trainable=load(store.read_bytes(f"{folder}/{TRAINABLE_FILE}")) if whole else None,
        optimizer=_torch_load(store.read_bytes(f"{folder}/{OPTIMIZER_FILE}")) if whole else None,
        state=_torch_load(store.read_bytes(f"{folder}/state.pt")),
        progress=store.read_json(f"{folder}/progress.json"),
    )


def latest_checkpoint(store: ArtifactStore, stage_folder: str) -> Checkpoint | None:
    """The newest complete checkpoint, or None when the run starts fresh."""
    steps = checkpoint_steps(store, stage_folder)
    return load_checkpoint(store, stage_folder, steps[-1]) if steps else None


def prune_checkpoints(store: ArtifactStore, stage_folder: str, keep_last: int | None) -> list[str]:
    """Remove complete checkpoints beyond the newest `keep_last` and incomplete leftovers older than the newest."""
    complete = checkpoint_steps(store, stage_folder)
    newest = complete[-1] if complete else None
    doomed = complete[:-keep_last] if keep_last else []
    removed = []
    for path in store.list(checkpoints_folder(stage_folder)):
        match = _FOLDER.search(path)
        if not match:
            continue
        step = int(match.group(1))
        leftover = step not in complete and newest is not None and step < newest
        if step in doomed or leftover:
            store.remove(path)
            removed.append(posixpath.basename(path))
    return removed


def checkpoint_folder(stage_folder: str, step: int) -> str:
    """The folder of the checkpoint of `step`."""
    return f"{checkpoints_folder(stage_folder)}/step-{step:08d}"


def read_trainable(folder: Path) -> dict[str, torch.Tensor]:
    """The trained tensors of a checkpoint folder on this machine: its safetensors file, or its FSDP shards
    gathered (read in this process alone)."""
    from safetensors.torch import load_file

    if (folder / TRAINABLE_FILE).exists():
        return load_file(str(folder / TRAINABLE_FILE))
    from dreamcore.train.fsdp import SHARDED_FOLDER, read_sharded_trainable

    return read_sharded_trainable(str(folder / SHARDED_FOLDER))


def _torch_bytes(value: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _torch_load(data: bytes) -> Any:
    import torch

    # weights_only: plain containers of tensors and numbers, never arbitrary pickles from storage.
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def json_safe(value: Any) -> Any:
    """Check that a BatchSource state round-trips through JSON (it is stored as JSON)."""
    try:
        return json.loads(json.dumps(value))
    except TypeError as error:
        raise TypeError(f"BatchSource.state_dict() must be JSON-serialisable to be checkpointed: {error}") from error
