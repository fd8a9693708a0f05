"""The autocast precision training runs at on this machine, from the config's mixed_precision.

bf16 runs under torch.autocast on CUDA and on CPUs with AMX (Intel's matrix tiles): the same accelerate
path on both, the frozen base in bf16 and the trained parameters in fp32 (master weights). On a CPU bf16
pays only with AMX: SD 1.5-architecture LoRA trained 1.89x faster than fp32 with it, and 0.60x as fast with
AVX512-BF16 alone (oneDNN capped below AMX; benchmarks/results/cpu_bf16*.md), so there it trains in fp32.
Where the hardware cannot honour the choice, training says what it runs instead, never silently.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU: it has AMX tiles (x86). AVX512-BF16
    alone computes bf16 natively but measured slower than fp32 for training (see the module doc)."""
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


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
    why = (_cpu_without_amx() if mixed_precision == "bf16"
           else "CPUs have no fast fp16 math (bf16 is the CPU half precision)")
    logger.warning("mixed_precision %r: %s; training in fp32. Set mixed_precision: no to say so in the config.",
                   mixed_precision, why)
    return "no"


def _cpu_without_amx() -> str:
    import torch

    if torch.cpu._is_avx512_bf16_supported():
        return ("this CPU has AVX512-BF16 but no AMX, where bf16 autocast trains slower than fp32 "
                "(0.60x measured on SD 1.5-architecture LoRA)")
    return "this CPU has no AMX or other native bf16 matrix math"
