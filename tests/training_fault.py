"""A one-shot training fault for the "a rerun resumes from the checkpoint" tests, installed by the
tests themselves: production code has no hook for it.

A file holds a step number; once training passes that step it raises InjectedTrainingFault and
removes the file, so the fault strikes once (like a lost worker) and the rerun trains on. The fault
wraps the step callback of train_stage as dreamcore.pipeline.training calls it, so the train task
and `dreamcore run --stage train` both meet it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Where tests/e2e/training_fault_site/sitecustomize.py reads the fault file's path from (served processes).
FAULT_FILE_ENV = "DREAMCORE_TEST_TRAINING_FAULT_FILE"


class InjectedTrainingFault(ValueError):
    """Raised on purpose after the step in the fault file. A ValueError, so the train task's retry
    condition refuses it as it refuses a bad config: the run fails at once, and the rerun the test
    starts (not a task retry) is what resumes from the checkpoint."""


def with_training_fault(train_stage: Callable[..., Any], fault_file: Path) -> Callable[..., Any]:
    """`train_stage` whose step callback raises InjectedTrainingFault once, after the step in `fault_file`."""

    @functools.wraps(train_stage)
    def faulty_train_stage(*args: Any, on_step: Callable[[dict], None] | None = None, **kwargs: Any):
        def step(entry: dict[str, Any]) -> None:
            if on_step is not None:
                on_step(entry)
            if fault_file.is_file() and entry["step"] > int(fault_file.read_text()):
                fault_file.unlink()
                raise InjectedTrainingFault(f"{fault_file}: failing at step {entry['step']} on purpose")

        return train_stage(*args, on_step=step, **kwargs)

    return faulty_train_stage


def install_training_fault(fault_file: Path) -> None:
    """Arm the fault for the rest of this process (see the module docstring); tests running in
    the pytest process use `monkeypatch` with with_training_fault instead, so it is undone."""
    from dreamcore.pipeline import training

    training.train_stage = with_training_fault(training.train_stage, fault_file)
