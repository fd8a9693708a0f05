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
