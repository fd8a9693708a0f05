"""Stage plans built from the upstream results the flow holds (what a stage below pipeline cannot see)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dreamcore.config import RunConfig
from dreamcore.evaluate.eval_set import committed_eval_rows, eval_rows_of_caches
from dreamcore.evaluate.stage import EvaluatePlan, plan_evaluation
from dreamcore.storage import ArtifactStore, StageResult
from dreamcore.train.plan import CacheResults


def plan_evaluating(config: RunConfig, train_result: StageResult,
                    caches: CacheResults | Mapping[str, Any] | None = None) -> EvaluatePlan:
    """The evaluate plan of `train_result`: its eval rows from the cache stage's results when the caller holds
    them (the dreambooth flow), else from the committed ingests and caches of the data as it is now."""
    store = ArtifactStore(config.training.resolved_storage_root)
    if caches is None:
        rows = committed_eval_rows(config, store)
    else:
        caches = CacheResults.model_validate(caches)
        rows = eval_rows_of_caches(config, store, caches.vae_cache, caches.text_cache)
    return plan_evaluation(config, train_result, rows)
