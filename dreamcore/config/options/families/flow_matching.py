"""Flow matching (SD3, Flux): how training draws its sigmas; SimpleTuner's names and defaults.

Read by `FlowMatchObjective` (dreamcore/models/families/objectives.py).
"""

from __future__ import annotations

from pydantic import Field

from dreamcore.config.options.families.base import FamilyOptions


class FlowMatchingOptions(FamilyOptions):
    """Flow matching (SD3, Flux): how training draws its sigmas."""

    flow_schedule_shift: float | None = Field(
        3.0, ge=0.0,
        description="Flow matching: shift the sampled sigmas towards noise, s' = shift s / (1 + (shift - 1) s) "
        "(SD3 was trained with 3; 0 or 1: no shift).",
    )
    flow_schedule_auto_shift: bool = Field(
        False,
        description="Flow matching: shift by the image size instead (Flux's resolution-dependent shift, "
        "exp(mu) with mu from the scheduler's base/max shift); overrides flow_schedule_shift.",
    )
    flow_use_uniform_schedule: bool = Field(
        False, description="Flow matching: draw sigmas uniformly in [0, 1] instead of the logit-normal default."
    )
    flow_use_beta_schedule: bool = Field(
        False, description="Flow matching: draw sigmas from Beta(flow_beta_schedule_alpha, flow_beta_schedule_beta) "
        "(flow_use_uniform_schedule wins when both are set, as in SimpleTuner)."
    )
    flow_beta_schedule_alpha: float = Field(2.0, gt=0.0, description="Flow matching: alpha of the beta schedule.")
    flow_beta_schedule_beta: float = Field(2.0, gt=0.0, description="Flow matching: beta of the beta schedule.")
    flow_sigmoid_scale: float = Field(
        1.0, ge=0.0, description="Flow matching: sigma = sigmoid(scale x N(0, 1)) (the default logit-normal schedule)."
    )
