"""DeepFloyd IF stage II's own keys: the stage I model its validation upscales from.

Read by the deepfloyd-ii family (dreamcore/models/families/deepfloyd/stage_two.py, `first_stage_key`).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from dreamcore.config.options.families.base import FamilyOptions


class DeepFloydOptions(FamilyOptions):
    """DeepFloyd IF stage II: the stage I model validation chains before the upscaler."""

    in_train_key: ClassVar[bool] = False  # validation images only: it cannot change the trained weights
    keyed_when_set: ClassVar[tuple[str, ...]] = ("deepfloyd_validation_stage1_model",)
    read_by_evaluation: ClassVar[tuple[str, ...]] = ("deepfloyd_validation_stage1_model",)

    deepfloyd_validation_stage1_model: str | None = Field(
        None,
        description="DeepFloyd IF stage II: a stage I model (folder or hub id, IFPipeline) whose images validation "
        "upscales: stage I draws each validation prompt at a quarter of the validation size and the trained "
        "stage II upscales it. Unset: validation upscales dataset images shrunk by 4.",
    )
