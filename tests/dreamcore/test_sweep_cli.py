"""`dreamcore sweep`: a bad SWEEP.json is one 'error:' line per problem naming the file and key, exit 2,
before anything runs."""

from __future__ import annotations

import json

from dreamcore.cli import main
from dreamcore.demo import write_demo_project


def test_bad_sweep_files_are_config_errors(tmp_path, capsys):
    config = write_demo_project(tmp_path / "demo")
    capsys.readouterr()
    cases = {
        "unknown.json": ({"name": "s", "parameters": {"learning_rate": [1e-3]}, "colour": 1}, "key 'colour'"),
        "refused.json": ({"name": "s", "parameters": {"resolution_type": ["area"]}}, "parameters.resolution_type"),
        "grid-range.json": ({"name": "s", "parameters": {"learning_rate": {"low": 1e-4, "high": 1e-3}}},
                            "grid mode needs a list"),
        "invalid.json": ({"name": "s", "parameters": {"lora_rank": [0]}}, "key 'lora_rank'"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        assert main(["sweep", str(config), str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and expected in err, (name, err)
    assert not (tmp_path / "demo" / "output").exists()  # nothing ran
