"""Every shipped deployment file loads, and each entrypoint names a real Prefect flow."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

from deployments.serve import build_deployments
from dreamcore.config import RunConfig

REPO = Path(__file__).resolve().parents[2]


def test_prefect_yaml_entrypoints_are_flows_on_the_process_pool() -> None:
    document = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    names = set()
    for deployment in document["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, function), Flow), deployment["entrypoint"]
        assert deployment["work_pool"]["name"] == "dreamcore-process"
        names.add(getattr(module, function).name)
    assert names == {"dreambooth", "retrain", "gc"}
    retrain = next(d for d in document["deployments"] if d["name"] == "retrain")
    assert [s["cron"] for s in retrain["schedules"]] == ["0 3 * * 0"]


def test_served_deployments_carry_the_run_config_and_the_schedule() -> None:
    config = RunConfig(training={"pretrained_model_name_or_path": "/models/sd"},
                       datasets=[{"id": "subject", "instance_data_dir": "/data/subject"}])
    dreambooth, retrain, gc = build_deployments(config, cron="0 4 * * *", name="nightly", gc_cron="0 5 * * *")
    assert dreambooth.parameters["config"]["training"]["pretrained_model_name_or_path"] == "/models/sd"
    assert not dreambooth.schedules
    assert [s.schedule.cron for s in retrain.schedules] == ["0 4 * * *"]
    assert retrain.parameters["run_name"] == "nightly"
    assert gc.parameters["apply"] is True and gc.parameters["config"] == dreambooth.parameters["config"]
    assert [s.schedule.cron for s in gc.schedules] == ["0 5 * * *"]
    assert not build_deployments(config)[2].schedules  # gc runs on a schedule only when asked


def test_the_wheel_deployment_file_is_prefect_yaml_with_module_entrypoints() -> None:
    checkout = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    wheel = yaml.safe_load((REPO / "deployments" / "prefect-wheel.yaml").read_text())
    assert len(wheel["deployments"]) == len(checkout["deployments"])
    for ours, theirs in zip(wheel["deployments"], checkout["deployments"]):
        module, function = ours["entrypoint"].split(":")
        assert theirs["entrypoint"] == f"{module.replace('.', '/')}.py:{function}"
        assert isinstance(getattr(importlib.import_module(module), function), Flow)
        assert {k: v for k, v in ours.items() if k != "entrypoint"} == {k: v for k, v in theirs.items() if k != "entrypoint"}
