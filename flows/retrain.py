"""Flow: recurring retraining. Looks for new, changed or removed images; with none it does nothing
and says so; otherwise it runs the dreambooth flow, where every stage the change does not touch
comes back Cached. With continue_from_previous the new training starts from the last run's weights."""

from __future__ import annotations

from prefect import flow

from dreamcore.config import RunConfig
from dreamcore.retrain import continue_from_last_run
from flows.dreambooth import dreambooth
from tasks.retrain import find_changes, remember_run


@flow(name="retrain", log_prints=True)
def retrain(config: RunConfig, run_name: str = "default", force: bool = False,
            continue_from_previous: bool = False) -> dict:
    """Retrain when the data changed since the last `run_name` run (or when forced)."""
    changes = find_changes(config, run_name)
    if not (changes["any"] or force):
        print(changes["summary"])
        return {"retrained": False, "changes": changes}
    if continue_from_previous:
        config = continue_from_last_run(config, run_name)
        print(f"training starts from {config.training.init_weights or 'a fresh adapter (no earlier run)'}")
    results = dreambooth(config)
    remember_run(config, run_name, results)
    return {"retrained": True, "changes": changes, "results": results}
