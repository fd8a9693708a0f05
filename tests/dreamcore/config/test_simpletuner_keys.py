"""Every SimpleTuner key is honoured, refused or ignored, and each class behaves as documented.

The key list is tests/fixtures/simpletuner/keys.json, captured from SimpleTuner's own argument parser (its
field registry) and its dataloader documentation with scripts/capture_simpletuner_keys.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.config import ConfigError, load_config
from dreamcore.config import simpletuner_keys as st
from dreamcore.config.keys_doc import honoured_config_keys, honoured_dataset_keys, render

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "simpletuner"
KEYS = json.loads((FIXTURES / "keys.json").read_text())
CLASSES = FIXTURES / "classes"


def classes_of(key: str, honoured: dict, refused: dict, ignored: dict) -> list[str]:
    return [name for name, table in (("honoured", honoured), ("refused", refused), ("ignored", ignored)) if key in table]


@pytest.mark.parametrize("key", sorted(KEYS["config_keys"]))
def test_every_config_key_is_in_exactly_one_class(key: str) -> None:
    assert len(classes_of(key, honoured_config_keys(), st.REFUSED, st.IGNORED)) == 1, key


@pytest.mark.parametrize("key", sorted(KEYS["dataset_keys"]))
def test_every_dataset_key_is_in_exactly_one_class(key: str) -> None:
    assert len(classes_of(key, honoured_dataset_keys(), st.DATASET_REFUSED, st.DATASET_IGNORED)) == 1, key


def test_the_tables_hold_only_simpletuner_keys_and_the_captured_defaults() -> None:
    assert set(st.REFUSED) | set(st.IGNORED) <= set(KEYS["config_keys"])
    assert set(st.DATASET_REFUSED) | set(st.DATASET_IGNORED) <= set(KEYS["dataset_keys"])
    captured = {k: v for k, v in KEYS["config_keys"].items() if k in st.REFUSED and v not in (None, False, "")}
    assert st.SIMPLETUNER_DEFAULTS == captured
    assert st.SIMPLETUNER_COMMIT == KEYS["simpletuner_commit"]


def test_the_docs_table_is_the_data() -> None:
    assert (ROOT / "docs" / "simpletuner-keys.md").read_text() == render(), (
        "docs/simpletuner-keys.md is stale: python -m dreamcore.config.keys_doc > docs/simpletuner-keys.md")
    assert "docs/simpletuner-keys.md" in (ROOT / "README.md").read_text()


def _load(*names: str):
    try:
        return load_config(*(CLASSES / name for name in names)), None
    except ConfigError as error:
        return None, error


def _honoured(loaded) -> None:
    training, by_id = loaded.training, {d.id: d for d in loaded.datasets}
    assert training.checkpointing_steps == 50 and training.validation_steps == 25 and training.lora_rank == 8
    assert list(by_id) == ["subject", "subject-hires", "text-embeds"]  # both disabled spellings skipped
    subject, hires = by_id["subject"], by_id["subject-hires"]
    # top-level defaults fill what a dataset leaves out; its own values win
    assert (subject.resolution, subject.resolution_type, subject.minimum_image_size) == (512, "pixel", 256)
    assert subject.crop and subject.crop_style == "center"
    assert (hires.resolution, hires.resolution_type, hires.crop, hires.minimum_image_size) == (1024, "pixel_area", False, 256)
    assert subject.cache_dir_vae == "cache/vae/sd1x/subject"
    assert hires.cache_dir_vae == "out/cache/vae/sd1x/subject-hires"
    assert by_id["text-embeds"].cache_dir == "cache/text/sd1x" and by_id["text-embeds"].resolution == 1024
    assert loaded.warnings == []
    assert [n.split(": ", 1)[1] for n in loaded.notices] == [
        "dataset 'old-photos' is disabled: skipped", "dataset 'older-photos' is disabled: skipped"]


def _refused(error: ConfigError) -> None:
    (problem,) = error.problems
    assert problem.key == "controlnet" and "value True refused: ControlNet training is a different kind" in str(problem)


def _refused_at_default(loaded) -> None:
    assert loaded.warnings == [] and loaded.notices == []


def _ignored(loaded) -> None:
    assert loaded.warnings == []
    assert len(loaded.notices) == 5
    assert all("ignored: cannot change the trained weights" in n for n in loaded.notices)
    assert any("'push_to_hub' ignored: cannot change the trained weights (hub upload)" in n for n in loaded.notices)


def _unknown(loaded) -> None:
    assert loaded.notices == [] and len(loaded.warnings) == 1 and "unknown key 'my_team_setting'" in loaded.warnings[0]


def _dataset_refused(error: ConfigError) -> None:
    (problem,) = error.problems
    assert (problem.dataset_id, problem.key) == ("subject", "max_num_samples")
    assert "value 10 refused: dataset sample limits are not implemented" in str(problem)


def _dataset_ignored(loaded) -> None:
    assert loaded.warnings == [] and len(loaded.notices) == 3
    assert all("ignored: cannot change the trained weights" in n for n in loaded.notices)


@pytest.mark.parametrize(
    ("files", "expect_error", "check"),
    [
        (("honoured.json",), False, _honoured),
        (("datasets.json", "honoured.json"), False, _honoured),  # a dataset list given first gets the defaults too
        (("refused.json",), True, _refused),
        (("refused-at-default.json",), False, _refused_at_default),
        (("ignored.json",), False, _ignored),
        (("unknown.json",), False, _unknown),
        (("dataset-refused.json",), True, _dataset_refused),
        (("dataset-ignored.json",), False, _dataset_ignored),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_key_classes(files, expect_error, check) -> None:
    loaded, error = _load(*files)
    assert (error is not None) == expect_error, error
    check(error if expect_error else loaded)


def test_refused_keys_say_which_values_match_what_dreamcore_does() -> None:
    assert "set it to True" in st.refusal("disable_bucket_pruning", False, st.REFUSED["disable_bucket_pruning"])
    assert not st.asks_for_nothing_more("disable_bucket_pruning", False)  # SimpleTuner's default, not what we do
    assert st.asks_for_nothing_more("crepa_lambda", "0.5") and st.asks_for_nothing_more("crepa_lambda", None)
    assert not st.asks_for_nothing_more("crepa_lambda", 0.7)
    assert not st.asks_for_nothing_more("controlnet", True)
