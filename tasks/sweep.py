"""Prefect tasks of the sweep flow: rank the evaluated points, record the winner, publish the artifacts."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from dreamcore.storage import ArtifactStore
from dreamcore.sweep import SweepSpec, rank_points, record_sweep
from dreamcore.sweep.grid import best_runs_grid
from tasks.artifacts import artifact_key, embedded_picture


@task(name="sweep-rank", task_run_name="sweep-rank", cache_policy=None)
def rank_and_record(storage_root: str, spec: SweepSpec, entries: list[dict], shared: dict | None = None) -> dict:
    """Rank every point by spec.rank_by, write runs/<sweep>/results.json and best.json, publish the results
    table and the best runs' image grid."""
    store = ArtifactStore(storage_root)
    ranked = rank_points(entries, spec.rank_by)
    best = record_sweep(store, spec.name, ranked, spec.rank_by, shared)
    columns = list(dict.fromkeys(spec.rank_by + sorted({m for r in ranked for m in r["metrics"]} - {"images"})))
    create_table_artifact(
        key=artifact_key("sweep", spec.name), description=f"Sweep `{spec.name}` ranked by {spec.rank_by}; winner "
        f"{best['point']} ({best['export']}).",
        table=[{"rank": r["rank"], "point": r["point"], **r["values"], **{m: r["metrics"].get(m) for m in columns},
                "train_key": r["results"]["train"]["key"]} for r in ranked])
    grid = best_runs_grid(store, spec.name, ranked, spec.grid_runs)
    if grid is not None:
        create_markdown_artifact(key=artifact_key("sweep-grid", spec.name),
                                 markdown=f"### Sweep `{spec.name}`: the best {min(spec.grid_runs, len(ranked))} "
                                 f"runs' validation images (final weights)\n\n{embedded_picture(store, grid)}")
    get_run_logger().info("sweep %r: winner %s (%s) %s; export %s", spec.name, best["point"], best["values"],
                          {m: best["metrics"].get(m) for m in spec.rank_by}, best["export"])
    return {"best": best, "ranked": [{k: r[k] for k in ("rank", "point", "values", "metrics")} for r in ranked],
            "grid": store.uri(grid) if grid else None}
