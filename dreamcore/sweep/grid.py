"""The best runs' validation images side by side: one row per run (final weights), one column per image."""

from __future__ import annotations

import io
from typing import Any

from dreamcore.drawing.grids import image_grid
from dreamcore.storage import ArtifactStore


def best_runs_grid(store: ArtifactStore, name: str, ranked: list[dict[str, Any]], runs: int) -> str | None:
    """Write runs/<name>/best_grid.png from the top `runs` points' final validation images; its path, or
    None when no run drew any (validation disabled)."""
    from PIL import Image

    rows, labels = [], None
    for entry in ranked[:runs]:
        folder = f"{entry['results']['evaluate']['stage']}/{entry['results']['evaluate']['key']}/weights/final"
        if not store.exists(f"{folder}/result.json"):
            continue
        images = store.read_json(f"{folder}/result.json").get("images") or []
        if not images:
            continue
        labels = labels or [f"{i['prompt'][:24]} / seed {i['seed']}" for i in images]
        pictures = [Image.open(io.BytesIO(store.read_bytes(f"{folder}/{i['file']}"))).convert("RGB")
                    for i in images[:len(labels)]]
        rows.append((f"#{entry['rank']} {entry['label']}", pictures + [None] * (len(labels) - len(pictures))))
    if not rows:
        return None
    buffer = io.BytesIO()
    image_grid(rows, labels).save(buffer, format="PNG")
    path = f"runs/{name}/best_grid.png"
    store.write_bytes(path, buffer.getvalue())
    return path
