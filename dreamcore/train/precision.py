"""The autocast precision training runs at on this machine, from the config's mixed_precision.

bf16 runs under torch.autocast on CUDA and on CPUs with native bf16 math (AVX512-BF16 or AMX): the same
accelerate path on both, the frozen base in bf16 and the trained parameters in fp32 (master weights).
Where the hardware cannot honour the choice, training says what it runs instead, never silently.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix math (x86 AVX512-BF16 or AMX); without it, bf16 autocast
    emulates bf16 and is slower than fp32."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def training_precision(mixed_precision: str, cuda: bool) -> str:
    """The accelerate mixed_precision to train with ("no", "fp16" or "bf16"), warning when it differs
    from the config's."""
    import torch

    if mixed_precision == "no":
        return "no"
    if cuda:
        if mixed_precision == "bf16" and not torch.cuda.is_bf16_supported():
            logger.warning("mixed_precision 'bf16': this GPU has no bf16; training under fp16 autocast instead")
            return "fp16"
        return mixed_precision
    if mixed_precision == "bf16" and cpu_supports_bf16():
        return "bf16"
    why = ("this CPU has no native bf16 math (AVX512-BF16 or AMX)" if mixed_precision == "bf16"
           else "CPUs have no fast fp16 math (bf16 is the CPU half precision)")
    logger.warning("mixed_precision %r: %s; training in fp32. Set mixed_precision: no to say so in the config.",
                   mixed_precision, why)
    return "no"
