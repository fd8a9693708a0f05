"""The dreamcore command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.demo import write_demo_project

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "simpletuner" / "examples"


def test_config_check_prints_resolved_config(capsys) -> None:
    assert main(["config", "check", str(EXAMPLES / "config-quantised.json")]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["training"]["base_model_precision"] == "int8-quanto"


def test_config_check_prints_errors_and_warnings(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"--lora_type": "dora", "--mystery": 3}))
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "key 'lora_type': value 'dora'" in err and "'lycoris'" in err and "'mystery'" in err


def test_run_one_stage_locally_without_prefect(tmp_path: Path, capsys) -> None:
    config = write_demo_project(tmp_path / "demo")
    assert main(["run", str(config), "--stage", "ingest"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["subject"]["decoded"] == 8 and first["subject"]["counts"]["accepted"] == 8
    assert main(["run", str(config), "--stage", "ingest"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["subject"]["decoded"] == 0
    assert second["subject"]["key"] == first["subject"]["key"]


def test_unknown_stage_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    config = write_demo_project(tmp_path / "demo")
    capsys.readouterr()  # the demo's own output
    assert main(["run", str(config), "--stage", "trian"]) == 2
    assert capsys.readouterr().err == (
        "error: unknown stage 'trian'; stages: masks, class_images, ingest, cache, train, evaluate, refine\n")


def _demo_config(tmp_path: Path, **changes) -> Path:
    """The demo project's config.json with keys changed (None: removed)."""
    config = write_demo_project(tmp_path / "demo")
    values = json.loads(config.read_text())
    for key, value in changes.items():
        values.pop(key, None) if value is None else values.__setitem__(key, value)
    config.write_text(json.dumps(values))
    return config


def _lycoris(tmp_path: Path) -> dict:
    return {"--lora_type": "lycoris", "--lycoris_config": str(tmp_path / "missing-lycoris.json")}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"--pretrained_model_name_or_path": None}, "key 'pretrained_model_name_or_path': is required to run"),
        ({"--pretrained_model_name_or_path": "/nowhere/model"}, "model folder /nowhere/model does not exist"),
        (_lycoris, "key 'lycoris_config': file {tmp}/missing-lycoris.json does not exist"),
        ({"--controlnet": True}, "key 'controlnet': value True refused: ControlNet training"),
    ],
    ids=["no-model", "missing-model", "missing-lycoris-config", "refused-key"],
)
def test_config_check_refuses_what_run_refuses_and_creates_nothing(tmp_path: Path, capsys, changes, expected) -> None:
    changes = changes(tmp_path) if callable(changes) else changes
    config = _demo_config(tmp_path, **changes)
    capsys.readouterr()  # the demo's own output
    before = sorted(tmp_path.rglob("*"))
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert expected.format(tmp=tmp_path) in err and "Traceback" not in err
    assert main(["run", str(config)]) == 2
    assert expected.format(tmp=tmp_path) in capsys.readouterr().err
    assert sorted(tmp_path.rglob("*")) == before  # neither command wrote anything


def test_config_check_names_missing_dataset_folders(tmp_path: Path, capsys) -> None:
    config = write_demo_project(tmp_path / "demo")
    backend = config.parent / json.loads(config.read_text())["--data_backend_config"]
    datasets = json.loads(backend.read_text())
    datasets[0]["instance_data_dir"] = str(tmp_path / "no-such-folder")
    backend.write_text(json.dumps(datasets))
    capsys.readouterr()  # the demo's own output
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"dataset {datasets[0]['id']!r}: key 'instance_data_dir': folder {tmp_path}/no-such-folder does not exist" in err


def test_unreadable_config_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["config", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path}: key '<file>': cannot read it")


def test_help_does_not_import_torch() -> None:
    code = "import sys; from dreamcore.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().endswith("False")
