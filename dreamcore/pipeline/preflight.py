"""The start-up check of a run that has no config file at hand (the dreambooth flow): data.preflight's
problems as one RunFault line; nothing is created."""

from __future__ import annotations

from dreamcore.config import RunConfig
from dreamcore.data.preflight import preflight_problems
from dreamcore.storage.faults import RunFault


def preflight(config: RunConfig) -> None:
    """RunFault naming every problem that stops this run before it starts; checks create nothing."""
    problems = preflight_problems(config, "config")
    if problems:
        raise RunFault("; ".join(str(problem) for problem in problems))
