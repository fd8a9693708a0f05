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


def _lora_unet(offload: dict | None) -> UNet2DConditionModel:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8, norm_num_groups=4, attention_head_dim=2)
    unet.requires_grad_(False)
    if offload is not None:  # the frozen base only: the adapter's parameters stay out of the offloaded groups
        apply_group_offloading(unet, onload_device="cpu", offload_device="cpu", **offload)
    torch.manual_seed(1)
    unet.add_adapter(LoraConfig(r=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
    return unet


def _losses(unet: UNet2DConditionModel, steps: int = 2) -> list[float]:
    generator = torch.Generator().manual_seed(2)
    latents, text = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 3, 8, generator=generator)
    optimiser = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = unet(latents, torch.tensor([10, 500]), text).sample.pow(2).mean()
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
