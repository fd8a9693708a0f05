"""`dreamcore demo --family F --no-run`, then its ingest and cache stages through the CLI: shared by the family
demo tests that look at what the caches hold."""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.cli import main
from dreamcore.config import TrainingConfig, load_run_config
from dreamcore.models import detect_family


def demo_caches(family: str, workdir: Path, capsys) -> tuple[TrainingConfig, dict]:
    """Write the demo project of `family` under `workdir` (its model detected as that family), run ingest and
    cache: (its training config, the cache stage's printed results)."""
    assert main(["demo", "--workdir", str(workdir), "--family", family, "--no-run"]) == 0
    config_file = workdir / "config.json"
    config = load_run_config(config_file).training
    assert config.model_family == family and detect_family(config.pretrained_model_name_or_path).name == family
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "ingest"]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--stage", "cache"]) == 0
    return config, json.loads(capsys.readouterr().out)
