"""A dataset's `text_embeds` naming a text_embeds dataset (SimpleTuner's per-dataset text embeds): its captions'
embeddings go to that dataset's cache, training reads them from there; naming a missing one names both ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.cli import main
from dreamcore.config import ConfigError, load_config, load_run_config
from dreamcore.demo import write_demo_project


def _routed_demo(tmp_path: Path, target: str = "subject-embeds") -> Path:
    """The demo project with the subject's captions sent to a second text_embeds dataset of its own."""
    config = write_demo_project(tmp_path / "demo")
    backend = tmp_path / "demo" / "multidatabackend.json"
    datasets = json.loads(backend.read_text())
    for entry in datasets:
        if entry["id"] == "subject":
            entry["text_embeds"] = target
    datasets.append({"id": "subject-embeds", "type": "local", "dataset_type": "text_embeds",
                     "cache_dir": str(tmp_path / "subject-embeds")})
    backend.write_text(json.dumps(datasets))
    values = json.loads(config.read_text())
    values["--max_train_steps"] = 2
    config.write_text(json.dumps(values))
    return config


def test_naming_a_missing_text_embeds_dataset_names_both_ids(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(_routed_demo(tmp_path, target="nowhere"))
    (problem,) = caught.value.problems
    assert (problem.dataset_id, problem.key) == ("subject", "text_embeds")
    assert "dataset 'subject' names text_embeds dataset 'nowhere', which is not a text_embeds dataset" in str(problem)
    assert "['text-embeds', 'subject-embeds']" in str(problem)


def test_a_dataset_that_is_not_text_embeds_is_refused_too(tmp_path):
    with pytest.raises(ConfigError, match="names text_embeds dataset 'regularisation', which is not a text_embeds"):
        load_config(_routed_demo(tmp_path, target="regularisation"))


def test_routed_captions_are_cached_in_their_text_embeds_dataset_and_train(tmp_path, capsys):
    from dreamcore.cache.parquet_io import read_table
    from dreamcore.data.ingest import read_manifest
    from dreamcore.storage import ArtifactStore, StageResult

    config_file = _routed_demo(tmp_path)
    assert main(["config", "check", str(config_file)]) == 0
    capsys.readouterr()
    assert main(["run", str(config_file), "--until", "train"]) == 0
    done = json.loads(capsys.readouterr().out)
    text = done["cache"]["result"]["text_cache"]
    routed = text["details"]["text_embeds"]["subject-embeds"]
    assert routed["datasets"] == ["subject"] and routed["cache_uri"].endswith("subject-embeds")
    assert any((tmp_path / "subject-embeds").rglob("*.parquet"))  # the rows live in that dataset's cache_dir

    config = load_run_config(config_file)
    store = ArtifactStore(config.training.resolved_storage_root)
    subject_ingest = StageResult.model_validate(done["ingest"]["result"]["subject"])
    subject_captions = {c for row in read_manifest(store, subject_ingest) if row["status"] == "ok"
                        for c in row["captions"]}
    routed_captions = {r["caption"] for r in read_table(store, routed["index"])}
    default_captions = {r["caption"] for r in read_table(store, text["details"]["index"])}
    assert subject_captions and subject_captions <= routed_captions
    assert not subject_captions & default_captions  # the regularisation captions only
    assert done["train"]["result"]["train"]["counts"]["steps"] == 2

