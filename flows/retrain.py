"""Flow: recurring retraining. Looks for new, changed or removed images; with none it does nothing
and says so; otherwise it runs the dreambooth flow, where every stage the change does not touch
comes back Cached. With continue_from_previous the new training starts from the last run's weights.

The finished run replaces the current model only when retrain_guard promotes it; a rejected run ends
the flow in a Completed state named "Rejected" (the UI shows the name and the reason), and the
current model stays."""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed, State

from dreamcore.config import RunConfig
from dreamcore.retrain import continue_from_last_run
from flows.dreambooth import dreambooth
from tasks.retrain import find_changes, promote_or_reject_run


@flow(name="retrain", log_prints=True)
def retrain(config: RunConfig, run_name: str = "default", force: bool = False,
            continue_from_previous: bool = False) -> dict | State:
    """Retrain when the data changed since the last `run_name` run (or when forced)."""
    changes = find_changes(config, run_name)
    if not (changes["any"] or force):
        print(changes["summary"])
        return {"retrained": False, "changes": changes}
    if continue_from_previous:
        config = continue_from_last_run(config, run_name)
        print(f"training starts from {config.training.init_weights or 'a fresh adapter (no earlier run)'}")
    results = dreambooth(config)
    verdict = promote_or_reject_run(config, run_name, results)
    outcome = {"retrained": True, "promoted": verdict["promoted"], "verdict": verdict, "changes": changes,
               "results": results}
    if verdict["promoted"]:
        return outcome
    return Completed(name="Rejected", message=f"current model kept: {verdict['reason']}", data=outcome)
