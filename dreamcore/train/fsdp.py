"""FSDP2: the trainer's denoiser sharded with torch's own `fully_shard`, its checkpoints and its unsharding for export.

Why fully_shard and not accelerate's FSDP plugin: accelerate 1.15 turns the plugin on only for GPU-like distributed
types; on CPU (gloo, MULTI_CPU) it silently wraps the model in DDP. torch's fully_shard shards on gloo/CPU as on
NCCL/CUDA, so one code path, the one the CPU tests run, serves both; accelerate still sets up the process group, the
device and autocast, and the trainer simply does not hand the sharded model to `accelerator.prepare` (which would
wrap it in DDP).

Checkpoints (fsdp_state_dict_type): SHARDED_STATE_DICT writes every process's shards of the trained tensors and the
optimiser state through torch.distributed.checkpoint into `<checkpoint>/sharded/`; FULL_STATE_DICT gathers them and
the main process writes `trainable.safetensors` as a data-parallel run does, with the optimiser state keyed by
parameter name. Exports are always whole: `unsharded` rebuilds a plain denoiser holding the gathered tensors, so the
exporters see exactly what a single-process training hands them.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint._fsspec_filesystem import FsspecReader, FsspecWriter
from torch.distributed.checkpoint.metadata import TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, OffloadPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig
    from dreamcore.storage import ArtifactStore

logger = logging.getLogger(__name__)

SHARDED_FOLDER = "sharded"  # inside a checkpoint folder: the torch.distributed.checkpoint files
_TRAINABLE, _OPTIMIZER = "trainable", "optimizer"  # the top-level keys of the sharded state


def wrap_class_names(config: TrainingConfig, denoiser: torch.nn.Module) -> list[str]:
    """The block classes sharded as units: fsdp_transformer_layer_cls_to_wrap, else the denoiser's own
    `_no_split_modules` (diffusers names its blocks there: the UNet's transformer and resnet blocks, SD3's joint
    blocks, Flux's double and single blocks); none for NO_WRAP."""
    if config.fsdp_auto_wrap_policy == "NO_WRAP":
        return []
    return list(config.fsdp_transformer_layer_cls_to_wrap or getattr(denoiser, "_no_split_modules", None) or [])


def shard_model(model: torch.nn.Module, denoiser: torch.nn.Module, config: TrainingConfig,
                device: torch.device) -> int:
    """fully_shard each wrapped block of `denoiser` (innermost first), then `model` (the root: whatever no block
    holds); returns how many blocks were sharded. Call before the optimiser is built: sharding replaces the
    parameters with DTensors."""
    if not torch.distributed.is_initialized():
        raise ValueError("fsdp_enable shards over the launched training processes, but this process trains alone: "
                         "train with num_processes (or num_machines) >= 2 through the train task or "
                         "`dreamcore run CONFIG --stage train`, which launch them")
    mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
    offload = CPUOffloadPolicy(pin_memory=device.type == "cuda") if config.fsdp_cpu_offload else OffloadPolicy()
    options = {"mesh": mesh, "reshard_after_forward": config.fsdp_reshard_after_forward, "offload_policy": offload}
    names = set(wrap_class_names(config, denoiser))
    # Reversed pre-order visits a block's inner blocks before the block: fully_shard nests bottom-up.
    blocks = [m for m in reversed(list(denoiser.modules())) if type(m).__name__ in names and m is not denoiser]
    if names and not blocks:
        present = sorted({type(m).__name__ for m in denoiser.modules()})
        raise ValueError(f"fsdp_transformer_layer_cls_to_wrap {sorted(names)} matches no block of the "
                         f"{type(denoiser).__name__}; its classes: {', '.join(present)}")
    for block in blocks:
        fully_shard(block, **options)
    fully_shard(model, **options)
    logger.info("FSDP2: %d blocks of %s sharded over %d processes", len(blocks), sorted(names),
                mesh.size())
    return len(blocks)


def full_tensor(value: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor (a collective: every process calls it, in the same order); a plain tensor
    as it is. A CPU-offloaded shard is gathered on its mesh's device (nccl gathers only CUDA tensors)."""
    if not isinstance(value, DTensor):
        return value
    if value.device.type != value.device_mesh.device_type:
        value = value.to(value.device_mesh.device_type)
    return value.full_tensor()


def gathered_state(module: torch.nn.Module, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Every (or the named) tensor of `module`'s state dict gathered whole, detached on the CPU (collective)."""
    state = module.state_dict()
    return {name: full_tensor(state[name]).detach().to("cpu", copy=True).contiguous()
            for name in (names if names is not None else list(state))}


def unsharded(sharded: torch.nn.Module, rebuild) -> torch.nn.Module:
    """A plain (unsharded) copy of a sharded denoiser, for the exporters: `rebuild(module)` repeats on a fresh
    module of the same class what training did to it (the adapter), then the gathered tensors are assigned and the
    buffers (never sharded) copied. Built on the meta device, so the only real memory is the gathered tensors, on
    the CPU (collective)."""
    state = gathered_state(sharded)
    plain_class = next(c for c in type(sharded).__mro__ if not issubclass(c, FSDPModule))
    with torch.device("meta"):
        fresh = plain_class.from_config(sharded.config)
        rebuild(fresh)
    fresh.load_state_dict(state, strict=True, assign=True)
    for name, buffer in sharded.named_buffers():
        owner, _, leaf = name.rpartition(".")
        module = fresh.get_submodule(owner)
        module.register_buffer(leaf, buffer.detach().to("cpu", copy=True), persistent=leaf not in
                               module._non_persistent_buffers_set)
    return fresh


# ---------------------------------------------------------------- checkpoints

def _prefixed(names: list[str], prefix: str) -> list[str]:
    return [f"{prefix}{name}" for name in names]


def full_checkpoint_state(model: torch.nn.Module, optimizer, names: list[str], prefix: str) -> tuple[dict, dict]:
    """FULL_STATE_DICT: the trained tensors (named as Adapter.named_trainable names them) and the optimiser state
    (keyed by the model's parameter names), gathered whole to the CPU (collective; the main process writes them)."""
    trainable = gathered_state(model, _prefixed(names, prefix))
    trainable = {name[len(prefix):]: tensor for name, tensor in trainable.items()}
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))
    return trainable, optimizer_state


def load_full_checkpoint(model: torch.nn.Module, optimizer, trainable: dict[str, torch.Tensor],
                         optimizer_state: dict, prefix: str) -> None:
    """Load a FULL_STATE_DICT checkpoint into the sharded model and optimiser. Every process read the whole
    tensors, so each cuts its own shards out of them locally (no communication; torch's full_state_dict loading
    scatters instead, and on gloo its collectives went out of step between the processes)."""
    state = _sharded_state(model, optimizer, list(trainable), prefix)
    model_state = {f"{prefix}{name}": _shard_like(trainable[name], tensor)
                   for name, tensor in state[_TRAINABLE].items()}
    set_model_state_dict(model, model_state, options=StateDictOptions(strict=False))
    sharded = state[_OPTIMIZER]
    for fqn, values in sharded["state"].items():
        whole = optimizer_state["state"][fqn]
        sharded["state"][fqn] = {key: _shard_like(whole[key], value) for key, value in values.items()}
    set_optimizer_state_dict(model, optimizer, {"state": sharded["state"],
                                                "param_groups": optimizer_state["param_groups"]})


def _shard_like(whole, like):
    """This process's shard of a whole tensor, placed as `like` is (a plain value stays as it is)."""
    if not isinstance(like, DTensor):
        return whole.to(like.device) if isinstance(whole, torch.Tensor) and isinstance(like, torch.Tensor) else whole
    return distribute_tensor(whole.to(like.device, like.dtype), like.device_mesh, like.placements, src_data_rank=None)


def reshard(model: torch.nn.Module) -> None:
    """Put every sharded module back in its sharded state: with fsdp_reshard_after_forward false the modules keep
    their gathered weights registered after a step, and those do not require grad, so the adapter would name no
    trained tensor (measured: the checkpoint held none)."""
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def _sharded_state(model: torch.nn.Module, optimizer, names: list[str], prefix: str) -> dict[str, Any]:
    state = get_model_state_dict(model)
    return {_TRAINABLE: {name: state[f"{prefix}{name}"] for name in names},
            _OPTIMIZER: get_optimizer_state_dict(model, optimizer)}


def save_sharded(store: ArtifactStore, checkpoint_folder: str, model: torch.nn.Module, optimizer,
                 names: list[str], prefix: str) -> None:
    """SHARDED_STATE_DICT: every process writes its shards into `<checkpoint_folder>/sharded/` (torch.distributed
    .checkpoint; the coordinator, the main process, writes `.metadata` last). Collective."""
    writer = FsspecWriter(store.uri(f"{checkpoint_folder}/{SHARDED_FOLDER}"), **store.storage_options)
    dcp.save(_sharded_state(model, optimizer, names, prefix), storage_writer=writer)


def load_sharded(store: ArtifactStore, checkpoint_folder: str, model: torch.nn.Module, optimizer,
                 names: list[str], prefix: str) -> None:
    """Load a SHARDED_STATE_DICT checkpoint into the sharded model and optimiser (collective; any world size:
    torch.distributed.checkpoint reshards on load)."""
    state = _sharded_state(model, optimizer, names, prefix)  # the optimiser's state is initialised for loading
    dcp.load(state, storage_reader=FsspecReader(store.uri(f"{checkpoint_folder}/{SHARDED_FOLDER}"),
                                                **store.storage_options))
    model_state = {f"{prefix}{name}": tensor for name, tensor in state[_TRAINABLE].items()}
    set_model_state_dict(model, model_state, options=StateDictOptions(strict=False))
    set_optimizer_state_dict(model, optimizer, state[_OPTIMIZER])


def read_sharded_trainable(path: str) -> dict[str, torch.Tensor]:
    """The whole trained tensors of a sharded checkpoint folder (`<checkpoint>/sharded`), read in one process
    without a process group (evaluation applies a checkpoint's weights this way)."""
    reader = FsspecReader(path)
    prefix = f"{_TRAINABLE}."
    shapes = {key[len(prefix):]: meta for key, meta in reader.read_metadata().state_dict_metadata.items()
              if key.startswith(prefix) and isinstance(meta, TensorStorageMetadata)}
    trainable = {name: torch.empty(meta.size, dtype=meta.properties.dtype) for name, meta in shapes.items()}
    with warnings.catch_warnings():  # "torch.distributed is ... uninitialized, assuming ... a single process": yes
        warnings.simplefilter("ignore", UserWarning)
        dcp.load({_TRAINABLE: trainable}, storage_reader=FsspecReader(path), no_dist=True)
    return trainable
