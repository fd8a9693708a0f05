"""The optimiser: torch's fused AdamW where its kernel takes the tensors, the same updates as the loop."""

from __future__ import annotations

import pytest
import torch

from dreamcore.train.optim import fused_kernel_fits, make_optimizer


def _params(dtype=torch.float32) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(8, 4, dtype=dtype)), torch.nn.Parameter(torch.randn(4, dtype=dtype))]


def test_cpu_float_parameters_get_the_fused_kernel(make_config):
    optimizer = make_optimizer(make_config(), _params(), "cpu")

    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["fused"] is True


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fused_kernel_takes_floating_tensors(dtype):
    assert fused_kernel_fits(_params(dtype))


def test_fused_kernel_refuses_tensors_it_cannot_update():
    assert not fused_kernel_fits([torch.nn.Parameter(torch.zeros(3, device="meta"))])
    assert not fused_kernel_fits([torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64))])


def test_fused_updates_match_the_per_tensor_loop(make_config):
    config = make_config(adam_weight_decay=1e-2)
    fused, looped = _params(), _params()
    fused_optimizer = make_optimizer(config, fused, "cpu")
    looped_optimizer = torch.optim.AdamW(looped, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                                         weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    for step in range(5):
        for params, optimizer in ((fused, fused_optimizer), (looped, looped_optimizer)):
            torch.manual_seed(step)
            for p in params:
                p.grad = torch.randn_like(p)
            optimizer.step()

    for a, b in zip(fused, looped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
