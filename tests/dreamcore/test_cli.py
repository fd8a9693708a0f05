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


HEAVY = ("torch", "diffusers", "transformers", "peft", "pyarrow", "prefect", "numpy", "PIL")


@pytest.mark.parametrize("argv", [["--help"], ["config", "check", "CONFIG"]])
def test_help_and_config_check_import_no_heavy_module(tmp_path: Path, argv: list[str]) -> None:
    """They start in a fraction of a second: torch and diffusers alone take seconds to import."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"--model_type": "lora", "--lora_rank": 4}))
    argv = [str(config) if arg == "CONFIG" else arg for arg in argv]
    code = (f"import sys; from dreamcore.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _short_demo(tmp_path: Path) -> Path:
    """The demo project with 2 training steps and no validation: the chain tests' config."""
    config = write_demo_project(tmp_path / "demo")
    keys = json.loads(config.read_text())
    keys = {k: v for k, v in keys.items() if "validation" not in k and "eval" not in k}
    config.write_text(json.dumps(keys | {"--max_train_steps": 2, "--checkpointing_steps": 2}))
    return config


def test_run_until_train_is_one_process_and_a_rerun_reuses_every_stage(tmp_path: Path, capsys) -> None:
    config = _short_demo(tmp_path)
    assert main(["run", str(config), "--until", "train"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert list(first) == ["masks", "class_images", "ingest", "cache", "train"]
    assert [first[s]["status"] for s in ("ingest", "cache", "train")] == ["ran", "ran", "ran"]
    assert first["train"]["result"]["train"]["counts"]["steps"] == 2
    assert first["train"]["peak_rss_mb"] >= first["ingest"]["peak_rss_mb"] > 0
    assert main(["run", str(config), "--stages", "train,cache,ingest"]) == 0
    output = capsys.readouterr()
    second = json.loads(output.out)
    assert list(second) == ["ingest", "cache", "train"]  # pipeline order, whatever the list's order
    assert {s: second[s]["status"] for s in second} == {"ingest": "reused", "cache": "reused", "train": "reused"}
    assert second["train"]["result"]["train"]["key"] == first["train"]["result"]["train"]["key"]
    assert "stage train: reused in" in output.err


@pytest.mark.parametrize("option", ["--stage", "--until", "--stages"])
def test_unknown_stage_is_one_line_and_exit_2(tmp_path: Path, capsys, option: str) -> None:
    config = write_demo_project(tmp_path / "demo")
    capsys.readouterr()  # what writing the demo's tiny models printed
    assert main(["run", str(config), option, "trian"]) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown stage 'trian'; stages: masks, class_images, ingest, cache, train, evaluate, refine\n"
