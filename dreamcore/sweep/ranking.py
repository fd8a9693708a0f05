"""Ranking a sweep's evaluated points and recording the sweep (results and winner) in storage."""

from __future__ import annotations

import math
from typing import Any

from dreamcore.config.options.retrain import LOWER_IS_BETTER
from dreamcore.retrain.guard import final_metrics
from dreamcore.storage import ArtifactStore

# The export a winner is used through, by preference (what `pipe.load_lora_weights` or a loader reads).
_EXPORT_PREFERENCE = ("diffusers_lora", "lycoris", "pipeline")


def _order(metric: str, value: Any) -> tuple[int, float]:
    """Sort key of one metric: unmeasured last, then better first."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0.0)
    return (0, value if metric in LOWER_IS_BETTER else -value)


def rank_points(entries: list[dict[str, Any]], rank_by: list[str]) -> list[dict[str, Any]]:
    """`entries` ({point, values, results}) best first, each with its final-weights metrics and rank.

    A rank_by metric that no evaluation produced is a ValueError naming the columns there are.
    """
    rows = []
    for entry in entries:
        metrics = final_metrics(entry["results"]) or {}
        rows.append(entry | {"metrics": {m: metrics.get(m) for m in metrics if m not in ("weights", "step")}})
    columns = set().union(*(r["metrics"] for r in rows)) if rows else set()
    unknown = [m for m in rank_by if m not in columns]
    if rows and unknown:
        raise ValueError(f"rank_by {unknown}: not an evaluate summary column; columns: {sorted(columns)}")
    ranked = sorted(rows, key=lambda r: tuple(_order(m, r["metrics"].get(m)) for m in rank_by))
    return [r | {"rank": number} for number, r in enumerate(ranked, start=1)]


def winner_export(train: dict[str, Any]) -> tuple[str | None, str | None]:
    """(export kind, URI) of a trained point's weights, by preference."""
    exports = (train.get("details") or {}).get("exports") or {}
    kind = next((k for k in _EXPORT_PREFERENCE if k in exports), next(iter(exports), None))
    return kind, exports.get(kind) if kind else None


def record_sweep(store: ArtifactStore, name: str, ranked: list[dict[str, Any]], rank_by: list[str],
                 shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write runs/<name>/results.json (every point ranked, and the shared stages' results, so gc keeps what
    the points were trained on) and runs/<name>/best.json (the winner)."""
    summary = [{"rank": r["rank"], "point": r["point"], "values": r["values"], "metrics": r["metrics"],
                "train": r["results"]["train"], "evaluate": r["results"]["evaluate"]} for r in ranked]
    store.write_json(f"runs/{name}/results.json", {"rank_by": rank_by, "points": summary, "shared": shared or {}})
    best = ranked[0]
    kind, uri = winner_export(best["results"]["train"])
    record = {"sweep": name, "rank_by": rank_by, "point": best["point"], "values": best["values"],
              "metrics": best["metrics"], "export_kind": kind, "export": uri,
              "train_key": best["results"]["train"]["key"], "evaluate_key": best["results"]["evaluate"]["key"],
              "report": best["results"]["evaluate"].get("report_uri")}
    store.write_json(f"runs/{name}/best.json", record)
    return record
