"""Retraining: the regression guard that decides whether a new run replaces the current model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Metrics where a smaller value is better: eval loss, and PRES (how much class-prompt images still look like
# the subject: lower means the class prior survived). Every other metric (CLIP score, DINO, CLIP-I, DIV) is
# better when larger.
LOWER_IS_BETTER = frozenset({"eval_loss", "pres"})


class GuardRule(BaseModel):
    """How far one metric of a new run may fall behind the current model's and still be promoted."""

    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(0.0, ge=0, description="Absolute slack: how much worse than the current model is "
                             "still accepted, in the metric's own unit.")
    better: Literal["lower", "higher"] | None = Field(
        None, description="Which direction is better; default: lower for eval_loss, higher for any other metric.")

    def direction(self, metric: str) -> Literal["lower", "higher"]:
        return self.better or ("lower" if metric in LOWER_IS_BETTER else "higher")


class RetrainOptions(BaseModel):
    """Retraining: the regression guard that decides whether a new run replaces the current model."""

    retrain_guard: dict[str, float | GuardRule] | None = Field(
        None,
        description="Retrain flow: metric name -> tolerance (or {tolerance, better}). A new run becomes the "
        "current model only when each metric of its final weights, a column of the evaluate summary (eval_loss, "
        "clip_mean, ...), is no worse than the current model's by more than the tolerance; otherwise it is "
        "recorded as rejected and the current model stays. Unset: every run is promoted.",
    )

    @field_validator("retrain_guard")
    @classmethod
    def _rules(cls, value: dict[str, float | GuardRule] | None) -> dict[str, GuardRule] | None:
        if value is None:
            return None
        rules = {}
        for metric, rule in value.items():
            if not metric.strip():
                raise ValueError("retrain_guard: a metric name is empty; use an evaluate summary column such as "
                                 "'eval_loss' or 'clip_mean'")
            if isinstance(rule, (int, float)):
                if rule < 0:
                    raise ValueError(f"retrain_guard[{metric!r}]: tolerance {rule} is negative; use 0 or more")
                rule = GuardRule(tolerance=rule)
            rules[metric] = rule
        return rules
