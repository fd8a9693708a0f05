"""Exponential moving average of the trained weights (diffusers' EMAModel), on the CPU or the accelerator.

With ema_device "cpu" the shadow weights never touch the accelerator: each update copies the
trained tensors to the CPU and averages there (so it costs host memory and a transfer per update,
which is why ema_update_interval exists), instead of holding a second copy in GPU memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from dreamcore.train.adapters import Adapter


class TrainedEMA:
    """EMA shadows of an adapter's trainable parameters, kept on `device`."""

    def __init__(self, adapter: Adapter, decay: float, update_interval: int, device) -> None:
        import torch
        from diffusers.training_utils import EMAModel

        self.adapter = adapter
        self.update_interval = update_interval
        self.device = torch.device(device)
        self.names = list(adapter.named_trainable())
        self.model = EMAModel(self._views(), decay=decay)
        self.model.to(device=self.device)

    def _views(self) -> list[torch.nn.Parameter]:
        """The trained parameters as EMAModel should see them: themselves, or CPU copies."""
        import torch

        params = self.adapter.trainable_parameters()
        if all(p.device == self.device for p in params):
            return params
        # EMAModel only averages tensors that require grad (others are copied), so the copies must too.
        return [torch.nn.Parameter(p.detach().to(self.device), requires_grad=True) for p in params]

    def maybe_update(self, step: int) -> bool:
        """Average in the current weights when `step` (1-based optimiser steps) is on the interval."""
        if step % self.update_interval:
            return False
        self.model.step(self._views())
        return True

    def shadow_state(self) -> dict[str, torch.Tensor]:
        """Name -> EMA tensor (CPU copies), named like Adapter.named_trainable."""
        return {name: t.detach().to("cpu", copy=True) for name, t in zip(self.names, self.model.shadow_params)}

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily put the EMA weights into the adapter (for exporting them)."""
        raw = self.adapter.trainable_state()
        self.adapter.load_trainable_state(self.shadow_state())
        try:
            yield
        finally:
            self.adapter.load_trainable_state(raw)

    def state_dict(self) -> dict[str, Any]:
        """EMAModel's state (decay, step count, shadows) for checkpoints."""
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by state_dict, shadows back on this EMA's device."""
        self.model.load_state_dict(state)
        self.model.to(device=self.device)
