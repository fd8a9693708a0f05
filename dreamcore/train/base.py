"""The base model for training: only the UNet and the noise schedule, optionally quantised.

Training reads latents and text embeddings from the caches, so the VAE and text encoders are never
loaded here. Quantisation (base_model_precision) is for adapter training only: optimum-quanto
(int8/int4/int2/fp8) works on any device; fp8-torchao and nf4-bnb need CUDA and their libraries,
and anything missing is reported with what to install or which GPU is needed.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dreamcore.models import detect_family, load_pipeline
from dreamcore.models.quanto import QUANTO_WEIGHTS, quantise_weights

if TYPE_CHECKING:
    import torch

    from dreamcore.config import TrainingConfig
    from dreamcore.models import ModelFamily

logger = logging.getLogger(__name__)


class QuantisationUnavailable(RuntimeError):
    """base_model_precision asks for a library or hardware this machine does not have."""


@dataclass
class BaseModel:
    """The denoiser to train, its noise schedule and what kind of model it is."""

    unet: torch.nn.Module  # the family's denoiser: a UNet, or SD3's / Flux's transformer
    noise_scheduler: object  # diffusers DDPMScheduler, or FlowMatchEulerDiscreteScheduler (flow matching)
    family: ModelFamily
    prediction_type: str  # epsilon, v_prediction or flow_matching
    quantised: bool


def resolve_family(config: TrainingConfig) -> ModelFamily:
    """The model's family from its files; a contradicting model_family in the config is only logged."""
    family = detect_family(config.pretrained_model_name_or_path)
    if config.model_family not in family.config_names:
        logger.warning("model_family %r does not match the model at %s, which is %s: training it as %s",
                       config.model_family, config.pretrained_model_name_or_path, family.name, family.name)
    return family


def load_base(config: TrainingConfig, device, weight_dtype=None, family: ModelFamily | None = None) -> BaseModel:
    """Load the denoiser (quantised as configured) and the family's training noise scheduler (`family`: the
    one a train plan resolved; None: resolved here)."""
    precision = config.base_model_precision
    check_precision_available(precision, device)
    family = family or resolve_family(config)
    components = {name: None for name in family.skipped_for_training} | _load_time_quantisation(precision, family)
    pipe = load_pipeline(config.pretrained_model_name_or_path, family, components=components)
    unet = getattr(pipe, family.denoiser)
    if precision in ("no_change", *QUANTO_WEIGHTS):  # bitsandbytes / torchao place the UNet themselves
        unet.to(device=device)
        if weight_dtype is not None:
            unet.to(dtype=weight_dtype)
    if precision in QUANTO_WEIGHTS:
        _quanto(unet, precision)
    unet.requires_grad_(False)
    noise_scheduler = family.objective.noise_scheduler(pipe.scheduler.config, config.prediction_type,
                                                       where=str(config.pretrained_model_name_or_path))
    return BaseModel(unet, noise_scheduler, family, family.objective.prediction_type(noise_scheduler),
                     quantised=precision != "no_change")


def check_precision_available(precision: str, device) -> None:
    """Raise QuantisationUnavailable naming what is missing for `precision` on `device`."""
    import torch

    if precision == "no_change" or precision in QUANTO_WEIGHTS:
        if precision != "no_change" and importlib.util.find_spec("optimum.quanto") is None:
            raise QuantisationUnavailable(f"base_model_precision {precision!r} needs optimum-quanto: "
                                          "pip install optimum-quanto")
        return
    on_cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    if precision == "nf4-bnb":
        missing = [] if on_cuda else ["a CUDA GPU"]
        if importlib.util.find_spec("bitsandbytes") is None:
            missing.append("bitsandbytes (pip install bitsandbytes)")
    elif precision == "fp8-torchao":
        fp8_gpu = on_cuda and torch.cuda.get_device_capability(torch.device(device)) >= (8, 9)
        missing = [] if fp8_gpu else ["a CUDA GPU with compute capability >= 8.9 (RTX 4090, L40, H100)"]
        if importlib.util.find_spec("torchao") is None:
            missing.append("torchao >= 0.15 (pip install torchao)")
    else:
        raise QuantisationUnavailable(f"base_model_precision {precision!r} is not supported")
    if missing:
        raise QuantisationUnavailable(
            f"base_model_precision {precision!r} needs {' and '.join(missing)}; this machine trains on "
            f"{device}. Use int8-quanto (any device) or no_change instead."
        )


def _load_time_quantisation(precision: str, family: ModelFamily) -> dict:
    """from_pretrained options that quantise the UNet while loading (bitsandbytes, torchao)."""
    if precision == "nf4-bnb":
        import torch
        from diffusers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    elif precision == "fp8-torchao":
        from diffusers import TorchAoConfig
        from torchao.quantization import Float8WeightOnlyConfig

        config = TorchAoConfig(Float8WeightOnlyConfig())
    else:
        return {}
    from diffusers import PipelineQuantizationConfig

    # A per-component mapping keeps the (skipped) text encoders out of it.
    return {"quantization_config": PipelineQuantizationConfig(quant_mapping={family.denoiser: config})}


def _quanto(unet, precision: str) -> None:
    try:
        quantise_weights(unet, precision)
    except Exception as error:  # quanto raises plain errors for unsupported device/dtype pairs
        raise QuantisationUnavailable(
            f"base_model_precision {precision!r}: optimum-quanto could not quantise the UNet here ({error}); "
            "int8-quanto is the most widely supported choice"
        ) from error
