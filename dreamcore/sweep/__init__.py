"""Hyper-parameter sweeps: a grid or a seeded random search over training keys, ranked by evaluation.

spec: SWEEP.json (typed) and its points, each validated through the TrainingConfig; ranking: the
order of the evaluated points by named metrics (any evaluate summary column) and the sweep's record
(`runs/<sweep>/results.json`, `runs/<sweep>/best.json`, which gc treats as run records).
"""

from dreamcore.sweep.ranking import rank_points, record_sweep
from dreamcore.sweep.spec import SweepPoint, SweepSpec, load_sweep, sweep_points

__all__ = ["SweepPoint", "SweepSpec", "load_sweep", "rank_points", "record_sweep", "sweep_points"]
