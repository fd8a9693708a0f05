"""The regression guard: does a new run hold against the current (last promoted) model?

Metrics are read by name from the evaluate stage's summary row of the final weights, so any column
evaluation adds later (a DINO or CLIP-I score, say) can be guarded by naming it in retrain_guard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dreamcore.config.options.retrain import GuardRule


@dataclass(frozen=True)
class Comparison:
    """One guarded metric: the current model's value, the new run's, and whether the new one holds."""

    metric: str
    better: str
    tolerance: float
    previous: float | None
    new: float | None
    holds: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """Promote or reject, and why."""

    promoted: bool
    comparisons: list[Comparison]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"promoted": self.promoted, "reason": self.reason,
                "comparisons": [c.as_dict() for c in self.comparisons]}


def final_metrics(results: dict[str, Any] | None) -> dict[str, Any] | None:
    """The evaluate summary row of a run's final weights (None: the run was not evaluated)."""
    evaluate = (results or {}).get("evaluate")
    rows = ((evaluate or {}).get("details") or {}).get("rows") or []
    return next((row for row in rows if row.get("weights") == "final"), None)


def compare_metric(metric: str, rule: GuardRule, previous: float | None, new: float | None) -> Comparison:
    """Does `new` hold against `previous` within the rule's tolerance? (unmeasured on either side: not judged)."""
    better = rule.direction(metric)
    if new is None or previous is None:
        side = "new run" if new is None else "current model"
        return Comparison(metric, better, rule.tolerance, previous, new, True, f"not measured for the {side}")
    holds = new <= previous + rule.tolerance if better == "lower" else new >= previous - rule.tolerance
    return Comparison(metric, better, rule.tolerance, previous, new, holds)


def judge(guard: dict[str, GuardRule] | None, current: dict[str, Any] | None,
          candidate: dict[str, Any] | None) -> Verdict:
    """The verdict on `candidate` (a run's stage results) against `current` (the last promoted run's)."""
    if not guard:
        return Verdict(True, [], "no retrain_guard set: every run is promoted")
    if current is None:
        return Verdict(True, [], "no promoted run yet: the first run becomes the current model")
    new_row, old_row = final_metrics(candidate), final_metrics(current)
    if new_row is None:
        return Verdict(False, [], "the new run has no evaluation of its final weights to judge it by")
    unknown = sorted(set(guard) - set(new_row))
    if unknown:
        raise ValueError(f"retrain_guard: {unknown} not among the evaluate summary columns "
                         f"{sorted(k for k in new_row if k not in ('weights', 'step', 'images'))}; name one of those")
    old_row = old_row or {}
    comparisons = [compare_metric(m, rule, old_row.get(m), new_row.get(m)) for m, rule in guard.items()]
    failed = [c for c in comparisons if not c.holds]
    if not failed:
        return Verdict(True, comparisons, "every guarded metric holds against the current model")
    return Verdict(False, comparisons, "; ".join(
        f"{c.metric} {c.new:.6g} vs current {c.previous:.6g} ({c.better} is better, tolerance {c.tolerance:g})"
        for c in failed))
