"""SD3's own keys: what a dropped caption becomes (the text cache reads them).

Read by the SD3 family (dreamcore/models/families/sd3/).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from dreamcore.config.options.families.base import FamilyOptions


class SD3Options(FamilyOptions):
    """SD3's own keys: what a dropped caption becomes."""

    keyed_when_set: ClassVar[tuple[str, ...]] = ("sd3_clip_uncond_behaviour", "sd3_t5_uncond_behaviour")

    sd3_clip_uncond_behaviour: Literal["empty_string", "zero"] = Field(
        "empty_string",
        description="SD3, caption dropout: a dropped caption's CLIP states and pooled embedding are the empty "
        "caption's encoding (empty_string) or zeros (zero).",
    )
    sd3_t5_uncond_behaviour: Literal["empty_string", "zero"] | None = Field(
        None, description="SD3, caption dropout: the same for the T5 states; unset: as sd3_clip_uncond_behaviour."
    )
