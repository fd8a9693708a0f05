"""optimum-quanto weight quantisation, shared by the text cache, training and class-image drawing."""

from __future__ import annotations

# base_model_precision / text_encoder_N_precision values optimum-quanto applies (on any device).
QUANTO_WEIGHTS = {"int8-quanto": "qint8", "int4-quanto": "qint4", "int2-quanto": "qint2", "fp8-quanto": "qfloat8"}


def quantise_weights(module, precision: str) -> None:
    """Quantise `module`'s weights in place to `precision` (a QUANTO_WEIGHTS key) and freeze them.

    quanto raises plain errors for unsupported shapes, devices or dtypes; callers turn them into
    errors that name their config key.
    """
    import optimum.quanto as quanto

    quanto.quantize(module, weights=getattr(quanto, QUANTO_WEIGHTS[precision]))
    quanto.freeze(module)
    for quantised in module.modules():
        if isinstance(quantised, quanto.QModuleMixin):
            quantised.register_forward_pre_hook(_contiguous_on_cpu)


def _contiguous_on_cpu(module, args: tuple) -> tuple:
    """quanto's CPU kernel for bf16 activations over int8 weights (torch._weight_int8pack_mm, used under
    bf16 autocast) refuses inputs that are not contiguous in their last dimension, which attention's
    transposes produce; a contiguous copy is what the fp32 path makes anyway."""
    import torch

    return tuple(a.contiguous() if isinstance(a, torch.Tensor) and a.device.type == "cpu" else a for a in args)
