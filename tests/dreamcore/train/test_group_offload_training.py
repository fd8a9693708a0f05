"""Why dreamcore adds backward onloading to diffusers' group offloading (dreamcore/train/offload.py): raw
diffusers (apply_group_offloading, diffusers 0.42) releases a group's weights after its forward and never brings
them back for backward, which reads them (a convolution's backward reads the weight tensor it saved, whose data
is now a placeholder). On CPU this shows with offload to disk: the first step's loss matches, the next one is
NaN. tests/dreamcore/train/test_train_group_offload.py shows dreamcore's training with offload equal to training
without. If a diffusers release keeps the weights for backward, this test fails: the backward hooks may go."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.hooks import apply_group_offloading
from peft import LoraConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frozen_unet() -> UNet2DConditionModel:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, norm_num_groups=4, attention_head_dim=2)
    return unet.requires_grad_(False)


def _add_lora(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    torch.manual_seed(1)
    unet.add_adapter(LoraConfig(r=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
    return unet


def _lora_unet(offload: dict | None) -> UNet2DConditionModel:
    unet = _frozen_unet()
    if offload is not None:  # the frozen base only: the adapter's parameters stay out of the offloaded groups
        apply_group_offloading(unet, onload_device="cpu", offload_device="cpu", **offload)
    return _add_lora(unet)


def _loss(unet: UNet2DConditionModel) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    latents, text = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 3, 8, generator=generator)
    return unet(latents, torch.tensor([10, 500]), text).sample.pow(2).mean()


def _losses(unet: UNet2DConditionModel, steps: int = 2) -> list[float]:
    optimiser = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = _loss(unet)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("offload_type", ["block_level", "leaf_level"])
def test_group_offloading_to_disk_loses_the_weights_backward_needs(offload_type, tmp_path):
    plain = _losses(_lora_unet(None))
    kwargs = {"offload_type": offload_type, "offload_to_disk_path": str(tmp_path)}
    if offload_type == "block_level":
        kwargs["num_blocks_per_group"] = 1
    offloaded = _losses(_lora_unet(kwargs))
    assert offloaded[0] == plain[0]  # forward is unchanged ...
    assert math.isnan(offloaded[1]) or offloaded[1] != plain[1]  # ... the step trained on released weights


def test_dreamcore_offload_releases_the_weights_between_forward_and_backward(tmp_path):
    """After the forward of a step, autograd keeps no onloaded base weight alive (a linear layer saves `weight.t()`,
    which would): dreamcore's saved-tensor hooks keep "this view of this parameter" and rebuild it in backward. Each
    onloaded weight is put in a numpy array here, so a weakref tells when its memory is gone. Offloaded, a weight
    holds no memory either."""
    import gc
    import weakref

    import numpy as np

    from dreamcore.config import TrainingConfig
    from dreamcore.train.offload import offload_frozen_base

    plain = _add_lora(_frozen_unet())
    _loss(plain).backward()
    base = _frozen_unet()
    config = TrainingConfig(enable_group_offload=True, group_offload_type="block_level",
                            group_offload_blocks_per_group=1, group_offload_to_disk_path=str(tmp_path))
    onloading = offload_frozen_base(base, config, "cpu")
    alive: list[weakref.ref] = []

    def in_numpy(tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` copied into (64-byte aligned) numpy memory, whose lifetime a weakref shows."""
        memory = np.empty(tensor.numel() * tensor.element_size() + 64, dtype=np.uint8)
        start = -memory.ctypes.data % 64
        copy = torch.from_numpy(memory[start:start + tensor.numel() * tensor.element_size()]).view(tensor.dtype)
        alive.append(weakref.ref(memory))
        return copy.view(tensor.shape).copy_(tensor)

    for group in onloading.groups:  # inside dreamcore's wrappers of onload_
        def from_disk(group=group, load=group._onload_from_disk):
            load()
            for parameter in group.parameters:
                parameter.data = in_numpy(parameter.data)
        group._onload_from_disk = from_disk
    unet = _add_lora(base)
    loss = _loss(unet)
    gc.collect()
    assert alive and sum(ref() is not None for ref in alive) == 0  # released (before the fix: 29 kept)
    loss.backward()  # the weights come back for backward, and go again after it
    gc.collect()
    assert sum(ref() is not None for ref in alive) == 0
    # offloaded to disk, a weight keeps a one-element placeholder (diffusers' own is full-size)
    assert all(p.untyped_storage().nbytes() <= p.element_size() for g in onloading.groups for p in g.parameters)
    gradients = {name: p.grad for name, p in unet.named_parameters() if p.requires_grad}
    assert gradients and all(torch.equal(p.grad, gradients[name])
                             for name, p in plain.named_parameters() if p.requires_grad)
