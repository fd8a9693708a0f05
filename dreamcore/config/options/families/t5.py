"""T5 text encoders (SD3, Flux): how the text cache pads their states.

Read by the T5 families' caption settings (dreamcore/models/families/captions.py).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from dreamcore.config.options.families.base import FamilyOptions


class T5Options(FamilyOptions):
    """T5 text encoders (SD3, Flux): how the text cache pads their states."""

    in_train_key: ClassVar[bool] = False  # the text cache reads it
    t5_padding: Literal["zero", "unmodified"] = Field(
        "unmodified", description="SD3 and Flux: 'zero' sets the cached T5 states at padding tokens to 0; "
        "'unmodified' keeps what T5 computes there."
    )
