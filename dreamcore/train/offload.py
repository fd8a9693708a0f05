"""Group offloading of the frozen denoiser base while training (SimpleTuner's enable_group_offload keys).

diffusers' `apply_group_offloading` does the offloading: each group of weights (a block, or a leaf layer) is
brought to the device before its forward and sent back (to CPU memory or a safetensors file) after it. That is
enough for inference, not for training: backward needs the weights again, and diffusers (0.42) never brings them
back, so backward computes with a released placeholder (tests/dreamcore/train/test_group_offload_training.py).
Here each group is onloaded once more for its backward and offloaded after it:

- a hook on each output tensor of the group onloads it when the output's gradient is complete, before any
  backward op of the group can run (they all lie behind an output);
- hooks on its input tensors offload it again once all their gradients are complete, after the group's last
  backward op; a group whose inputs need no gradient (the first block, the model's top-level group) is offloaded
  when the whole backward ends;
- while a group is held for backward, diffusers' offload after a forward is skipped, so a checkpointed block
  recomputed inside backward keeps its weights;
- during the model's forward, saved-tensor hooks save a tensor that autograd keeps for backward and that is an
  onloaded base weight or a view of one (a linear layer saves `weight.t()`) as "this view of this parameter", and
  rebuild it from the parameter's data onloaded again for backward: otherwise the saved view keeps the onloaded
  weight alive from its forward to its backward and the offload releases nothing (the adapter's weights and the
  activations are saved as usual);
- offloaded to disk, a weight keeps a one-element placeholder, not diffusers' full-size `empty_like`.

The groups hold only the base's own weights, fixed when offloading is applied (before the adapter): LoRA and
LyCORIS parameters, added afterwards, stay on the device with the optimiser. A full fine-tune updates the very
weights the groups hold, so the config refuses it (config/training.py).
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils import _pytree as pytree

if TYPE_CHECKING:
    from dreamcore.config import TrainingConfig

_ALIGNMENT = 64  # bytes: torch's CPU allocator's alignment


@dataclass
class BackwardOnloading:
    """The offloaded groups of one model and the groups brought back for the backward pass running now."""

    groups: list = field(default_factory=list)
    held: dict[int, Any] = field(default_factory=dict)  # id(group) -> group, onloaded for this backward
    folder: str | None = None  # the disk offload folder this training made (removed with this object)
    # storage pointer -> (parameter, group) of the onloaded weights; the ids of the onloaded groups
    onloaded: dict[int, list] = field(default_factory=dict)
    onloaded_groups: set[int] = field(default_factory=set)
    _callback_for: int = -1  # the backward pass (autograd's graph task id) whose end offloads the held groups

    def onload_for_backward(self, group) -> None:
        """Bring `group` back (once per backward) and make sure the backward's end sends it away again."""
        if id(group) not in self.held:
            group.onload_()
            self.held[id(group)] = group
        backward = torch._C._current_graph_task_id()  # a backward that raised never ran its callback
        if self._callback_for != backward:
            torch.autograd.Variable._execution_engine.queue_callback(self._backward_ended)
            self._callback_for = backward

    def offload_after_backward(self, group) -> None:
        """`group`'s backward is over: offload it."""
        if self.held.pop(id(group), None) is not None:
            group.offload_()

    def _backward_ended(self) -> None:
        for group in self.held.values():
            group.offload_()
        self.held.clear()

    def pack(self, tensor: torch.Tensor):
        """Saved-tensor pack hook: an onloaded base weight (or a view of one) as a `_WeightView`, anything else as
        itself."""
        if tensor.requires_grad or tensor.layout is not torch.strided:  # the base is frozen and dense
            return tensor
        pointer = tensor.untyped_storage().data_ptr()
        if not pointer:  # no memory (an empty tensor): nothing to release
            return tensor
        for parameter, group in self.onloaded.get(pointer, ()):
            data = parameter.data
            start = data.storage_offset()
            if (data.untyped_storage().data_ptr() == pointer and tensor.dtype == data.dtype
                    and tensor.device == data.device
                    and start <= tensor.storage_offset() < start + max(data.numel(), 1)):
                return _WeightView(parameter, group, tensor.size(), tensor.stride(),
                                   tensor.storage_offset() - start, data.stride())
        return tensor

    def unpack(self, saved):
        """Saved-tensor unpack hook: rebuild a `_WeightView` from its parameter's data, onloaded for backward."""
        if not isinstance(saved, _WeightView):
            return saved
        if id(saved.group) not in self.onloaded_groups and torch._C._current_graph_task_id() != -1:
            self.onload_for_backward(saved.group)
        data = saved.parameter.data
        if data.stride() != saved.parameter_stride:
            raise RuntimeError("group offload: an onloaded weight came back with another memory layout "
                               f"({tuple(data.stride())}, was {tuple(saved.parameter_stride)}); cannot rebuild "
                               "the view backward needs")
        return data.as_strided(saved.size, saved.stride, data.storage_offset() + saved.offset)

    def track_onloading(self, group) -> None:
        """Keep `onloaded` (the storages of the onloaded weights, for `pack`) up to date as `group` comes and
        goes."""
        onload, offload = group.onload_, group.offload_
        pointers: list[int] = []  # the storages this group's onload registered

        def forget() -> None:
            for pointer in pointers:
                entries = [e for e in self.onloaded.get(pointer, ()) if e[1] is not group]
                if entries:
                    self.onloaded[pointer] = entries
                else:
                    self.onloaded.pop(pointer, None)
            pointers.clear()

        def onload_():
            onload()
            forget()  # an onload of a group already onloaded
            self.onloaded_groups.add(id(group))
            for parameter in group.parameters:
                pointers.append(parameter.untyped_storage().data_ptr())
                self.onloaded.setdefault(pointers[-1], []).append((parameter, group))

        def offload_():
            self.onloaded_groups.discard(id(group))
            forget()
            offload()

        group.onload_, group.offload_ = onload_, offload_


@dataclass(frozen=True)
class _WeightView:
    """What autograd keeps, instead of the tensor, of a saved view of an offloaded weight: its parameter, group and
    layout (the view's size, stride and offset in the parameter's data; the data's stride then)."""

    parameter: torch.nn.Parameter
    group: Any
    size: torch.Size
    stride: tuple[int, ...]
    offset: int
    parameter_stride: tuple[int, ...]


def _save_weights_by_reference(model: torch.nn.Module, onloading: BackwardOnloading) -> None:
    """Run `model`'s forward under `onloading`'s saved-tensor hooks. Outermost, so that a checkpointed block's own
    hooks (torch.utils.checkpoint, innermost) still decide what it saves."""
    forward = model.forward

    @functools.wraps(forward)
    def forward_saving_weights_by_reference(*args, **kwargs):
        with torch.autograd.graph.saved_tensors_hooks(onloading.pack, onloading.unpack):
            return forward(*args, **kwargs)

    model.forward = forward_saving_weights_by_reference


def _needing_gradient(tree) -> list[torch.Tensor]:
    """The distinct grad-requiring tensors in `tree` (tensors in tuples, lists, dicts, model outputs)."""
    if not torch.is_grad_enabled():
        return []
    leaves = pytree.tree_leaves(tree)
    return list({id(t): t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad}.values())


def _on_first_gradient(tree, call, group) -> None:
    """Call `call(group)` when the gradient of any grad-requiring tensor in `tree` is complete. Tensor hooks add
    no node to the graph: the gradients are summed as without them."""
    for tensor in _needing_gradient(tree):
        tensor.register_hook(lambda _grad: call(group))


def _on_last_gradient(tree, call, group) -> None:
    """Call `call(group)` once the gradients of all grad-requiring tensors in `tree` are complete (a group fed
    two streams, e.g. image and text tokens, may still run backward for one when the other's is done)."""
    tensors = _needing_gradient(tree)
    remaining = [len(tensors)]

    def done(_grad) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            call(group)

    for tensor in tensors:
        tensor.register_hook(done)


def _keep_only_current_tensors(group) -> None:
    """Make the group move the tensors it holds now, never those added to its modules later (an adapter's)."""
    if not group.modules:
        return
    tensors = {}
    for module in group.modules:
        tensors |= {id(p): p for p in module.parameters()} | {id(b): b for b in module.buffers()}
    params = [t for t in tensors.values() if isinstance(t, torch.nn.Parameter)]
    buffers = [t for t in tensors.values() if not isinstance(t, torch.nn.Parameter)]
    group.parameters = list(dict.fromkeys([*group.parameters, *params]))
    group.buffers = list(dict.fromkeys([*group.buffers, *buffers]))
    group.modules = []


def _aligned_after_disk_onload(group) -> None:
    """On a CPU, copy the weights a group brings back from disk into aligned memory: safetensors hands them out at
    the file's offsets, and unaligned operands take other CPU kernel paths that round differently (the losses
    would drift by an ulp from training without offload)."""
    onload_from_disk = group.onload_

    def onload_():
        onload_from_disk()
        for tensor in group.tensor_to_key:
            if tensor.data_ptr() % _ALIGNMENT:
                tensor.data = tensor.data.clone()

    group.onload_ = onload_


def _placeholders_without_memory(group) -> None:
    """After an offload to disk, give each tensor a placeholder that holds one element, not diffusers' full-size
    `empty_like` (memory the process keeps: a CPU holds the whole base in placeholders otherwise)."""
    offload_to_disk = group.offload_

    def offload_():
        offload_to_disk()
        for tensor in group.tensor_to_key:
            tensor.data = torch.empty((), dtype=tensor.dtype, device=tensor.device).expand(tensor.shape)

    group.offload_ = offload_


def _hold_while_in_backward(hook, onloading: BackwardOnloading) -> None:
    """Skip diffusers' offload after a forward while the group is held for backward (a recomputed block)."""
    offload_after_forward = hook.post_forward

    def post_forward(module, output):
        if id(hook.group) in onloading.held:
            return output
        return offload_after_forward(module, output)

    hook.post_forward = post_forward


def offload_frozen_base(model: torch.nn.Module, config: TrainingConfig, device) -> BackwardOnloading | None:
    """Apply the config's group offloading to `model` (the frozen denoiser, before the adapter is added) with
    backward onloading; None when enable_group_offload is off."""
    if not config.enable_group_offload:
        return None
    from diffusers.hooks import HookRegistry, apply_group_offloading

    folder = None
    if config.group_offload_to_disk_path:
        # A fresh folder: diffusers reuses any group file it finds under the path, whatever model wrote it.
        Path(config.group_offload_to_disk_path).mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="dreamcore-offload-", dir=config.group_offload_to_disk_path)
    device = torch.device(device)
    use_stream = config.group_offload_use_stream and device.type == "cuda"
    apply_group_offloading(
        model, onload_device=device, offload_device=torch.device("cpu"), offload_type=config.group_offload_type,
        num_blocks_per_group=(config.group_offload_blocks_per_group
                              if config.group_offload_type == "block_level" else None),
        use_stream=use_stream, offload_to_disk_path=folder)
    onloading = BackwardOnloading(folder=folder)
    if folder is not None:  # the model may draw (validation) until the training is dropped
        weakref.finalize(onloading, shutil.rmtree, folder, True)
    seen = set()
    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        hook = registry.get_hook("group_offloading") if isinstance(registry, HookRegistry) else None
        if hook is None:
            continue
        group = hook.group
        if id(group) not in seen:
            seen.add(id(group))
            onloading.groups.append(group)
            _keep_only_current_tensors(group)
            if folder is not None:
                _placeholders_without_memory(group)
            if folder is not None and device.type == "cpu":
                _aligned_after_disk_onload(group)
            onloading.track_onloading(group)
        _hold_while_in_backward(hook, onloading)
        if module is group.offload_leader:
            module.register_forward_hook(
                lambda _m, _args, output, g=group: _on_first_gradient(output, onloading.onload_for_backward, g))
        if module is group.onload_leader or group.onload_leader is None:
            module.register_forward_pre_hook(
                lambda _m, args, kwargs, g=group: _on_last_gradient((args, kwargs), onloading.offload_after_backward, g),
                with_kwargs=True)
    _save_weights_by_reference(model, onloading)
    return onloading

