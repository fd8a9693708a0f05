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


def test_unknown_stage_is_a_clear_error(tmp_path: Path) -> None:
    config = write_demo_project(tmp_path / "demo")
    with pytest.raises(ValueError, match="unknown stage 'trian'; stages: masks, class_images, ingest, cache, train, evaluate, refine$"):
        main(["run", str(config), "--stage", "trian"])


def test_help_does_not_import_torch() -> None:
    code = "import sys; from dreamcore.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().endswith("False")
