"""The text encoders the text cache runs: the family's pipeline without denoiser and VAE, each encoder at
the precision the config asks for (`text_encoder_1/2/3_precision`, optimum-quanto weights)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from dreamcore.models import ModelFamily, load_pipeline
from dreamcore.models.quanto import QUANTO_WEIGHTS, quantise_weights

# The config key that sets each pipeline component's precision (SimpleTuner numbers the encoders from 1).
PRECISION_KEYS = {
    "text_encoder": "text_encoder_1_precision",
    "text_encoder_2": "text_encoder_2_precision",
    "text_encoder_3": "text_encoder_3_precision",
}


def text_encoder_precisions(training: Any, family: ModelFamily) -> dict[str, str]:
    """component -> precision for the family's encoders whose precision is not `no_change`.

    Keys of encoders the family lacks are ignored (SimpleTuner configs set all three); a precision
    that cannot quantise a text encoder raises ValueError naming the key.
    """
    precisions = {}
    for component, key in PRECISION_KEYS.items():
        precision = getattr(training, key)
        if component not in family.text_components or precision == "no_change":
            continue
        if precision not in QUANTO_WEIGHTS:
            raise ValueError(
                f"{key} {precision!r} cannot quantise a text encoder; use no_change or one of "
                f"{', '.join(QUANTO_WEIGHTS)} (optimum-quanto, any device)"
            )
        precisions[component] = precision
    return precisions


def load_text_encoders(
    model_path: str, family: ModelFamily, precisions: Mapping[str, str] | None = None, device: str | None = None
):
    """The model's pipeline without denoiser and VAE (text encoders and tokenizers only), on `device`,
    with each encoder in `precisions` quantised."""
    from dreamcore.cache.encode import pick_device

    pipe = load_pipeline(model_path, family, components={family.denoiser: None, "vae": None})
    pipe = pipe.to(pick_device(device))
    for component, precision in (precisions or {}).items():
        quantise_text_encoder(getattr(pipe, component), precision, PRECISION_KEYS[component])
    return pipe


def quantise_text_encoder(encoder, precision: str, key: str) -> None:
    """Quantise an encoder's weights in place with optimum-quanto (and freeze them)."""
    if importlib.util.find_spec("optimum.quanto") is None:
        raise ValueError(f"{key} {precision!r} needs optimum-quanto: pip install optimum-quanto, or set no_change")
    try:
        quantise_weights(encoder, precision)
    except Exception as error:  # quanto raises plain errors for unsupported shapes or devices
        raise ValueError(
            f"{key} {precision!r}: optimum-quanto could not quantise this text encoder ({error}); "
            "int8-quanto is the most widely supported choice"
        ) from error
