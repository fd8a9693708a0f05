"""History of a retrain run name: every run judged by the guard, promoted or rejected, oldest first.

Kept in storage beside the current model's record (`runs/<run_name>/history.json`), written whole and
atomically on each decision: a retrain is one writer per run name (the schedule), so no merge is needed.
"""

from __future__ import annotations

import time
from typing import Any

from dreamcore.retrain.guard import Verdict, final_metrics
from dreamcore.storage import ArtifactStore


def history_path(run_name: str) -> str:
    return f"runs/{run_name}/history.json"


def read_history(store: ArtifactStore, run_name: str) -> list[dict[str, Any]]:
    path = history_path(run_name)
    store.invalidate()
    return store.read_json(path) if store.exists(path) else []


def history_entry(results: dict[str, Any], verdict: Verdict, run_id: str | None = None) -> dict[str, Any]:
    """What the history keeps of one judged run: which weights, their metrics, the decision and the comparison."""
    train = results.get("train") or {}
    evaluate = results.get("evaluate") or {}
    return {
        "decided_at": time.time(), "run_id": run_id, "decision": "promoted" if verdict.promoted else "rejected",
        "train_key": train.get("key"), "evaluate_key": evaluate.get("key"),
        "exports": (train.get("details") or {}).get("exports", {}), "metrics": final_metrics(results) or {},
        **verdict.as_dict(),
    }


def append_history(store: ArtifactStore, run_name: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Add one decision to the run name's history; returns the whole history."""
    history = read_history(store, run_name) + [entry]
    store.write_json(history_path(run_name), history)
    return history


def history_table(history: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, Any]]:
    """Rows for a table artifact: newest first, one column per guarded metric."""
    rows = []
    for entry in reversed(history):
        row = {"decided": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry["decided_at"])),
               "decision": entry["decision"], "train_key": (entry.get("train_key") or "")[:16]}
        row.update({m: entry.get("metrics", {}).get(m) for m in metrics})
        row["reason"] = entry.get("reason", "")
        rows.append(row)
    return rows
