"""The regression guard's verdicts: directions, tolerances, unmeasured metrics, unknown names, bad config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dreamcore.config import TrainingConfig
from dreamcore.config.options.retrain import GuardRule
from dreamcore.retrain.guard import judge


def _results(**metrics) -> dict:
    row = {"weights": "final", "step": 4, "images": 2, "eval_loss": None, "clip_mean": None} | metrics
    return {"evaluate": {"details": {"rows": [{"weights": "base", "eval_loss": 9.0}, row]}}}


def _guard(**rules) -> dict:
    return TrainingConfig(pretrained_model_name_or_path="m", retrain_guard=rules).retrain_guard


def test_eval_loss_is_lower_better_and_any_other_metric_higher_better():
    guard = _guard(eval_loss=0.01, clip_mean=0.5, dino_mean=0.0)
    current = _results(eval_loss=1.0, clip_mean=20.0, dino_mean=0.6)
    assert judge(guard, current, _results(eval_loss=1.01, clip_mean=19.5, dino_mean=0.6)).promoted
    worse_loss = judge(guard, current, _results(eval_loss=1.02, clip_mean=25.0, dino_mean=0.7))
    assert not worse_loss.promoted and worse_loss.reason.startswith("eval_loss 1.02 vs current 1")
    worse_dino = judge(guard, current, _results(eval_loss=0.5, clip_mean=25.0, dino_mean=0.59))
    assert not worse_dino.promoted and [c.metric for c in worse_dino.comparisons if not c.holds] == ["dino_mean"]


def test_an_explicit_direction_overrides_the_default():
    guard = _guard(eval_loss={"tolerance": 0, "better": "higher"})
    assert judge(guard, _results(eval_loss=1.0), _results(eval_loss=1.5)).promoted
    assert not judge(guard, _results(eval_loss=1.0), _results(eval_loss=0.5)).promoted


def test_first_run_unset_guard_and_unmeasured_metrics_promote():
    assert judge(None, _results(eval_loss=1.0), _results(eval_loss=5.0)).promoted
    assert judge(_guard(eval_loss=0), None, _results(eval_loss=5.0)).promoted
    verdict = judge(_guard(clip_mean=0), _results(clip_mean=None), _results(clip_mean=3.0))
    assert verdict.promoted and verdict.comparisons[0].note == "not measured for the current model"


def test_an_unevaluated_new_run_is_rejected():
    verdict = judge(_guard(eval_loss=0), _results(eval_loss=1.0), {"evaluate": None})
    assert not verdict.promoted and "no evaluation" in verdict.reason


def test_a_metric_evaluation_does_not_produce_is_a_clear_error():
    with pytest.raises(ValueError, match=r"retrain_guard: \['clip_score'\] not among .*'clip_mean'"):
        judge(_guard(clip_score=0), _results(eval_loss=1.0), _results(eval_loss=1.0))


def test_config_values():
    assert _guard(eval_loss=0.1)["eval_loss"] == GuardRule(tolerance=0.1)
    with pytest.raises(ValidationError, match="tolerance -1.0 is negative"):
        _guard(eval_loss=-1)
    with pytest.raises(ValidationError, match="better"):
        _guard(eval_loss={"tolerance": 0, "better": "up"})


def test_the_subject_fidelity_metrics_guard_by_their_evaluate_column_names():
    """The evaluate stage's DreamBooth-protocol columns (dino, clip_i, clip_t, div higher-better; pres lower-better,
    as the evaluation ranks its own prompts) guard a retrain by name."""
    from dreamcore.evaluate.subject_fidelity import HIGHER_IS_BETTER, METRICS

    guard = _guard(**{metric: 0.01 for metric in METRICS})
    held = {"dino": 0.6, "clip_i": 0.7, "clip_t": 25.0, "div": 0.3, "pres": 0.4}
    current = _results(**held)
    assert judge(guard, current, _results(**held)).promoted
    for metric in METRICS:
        worse_value = held[metric] - 0.1 if HIGHER_IS_BETTER[metric] else held[metric] + 0.1
        worse = judge(guard, current, _results(**(held | {metric: worse_value})))
        assert [c.metric for c in worse.comparisons if not c.holds] == [metric]


def test_a_sweep_ranks_by_a_subject_fidelity_metric():
    from dreamcore.sweep.ranking import rank_points

    entries = [{"point": n, "values": {}, "results": _results(dino=dino, pres=pres)}
               for n, (dino, pres) in enumerate([(0.5, 0.2), (0.8, 0.3), (0.7, 0.1)])]
    assert [r["point"] for r in rank_points(entries, ["dino"])] == [1, 2, 0]
    assert [r["point"] for r in rank_points(entries, ["pres"])] == [2, 0, 1]  # lower PRES: the prior survived
