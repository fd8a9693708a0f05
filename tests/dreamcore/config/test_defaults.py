"""dreamcore's defaults against SimpleTuner's field registry (tests/fixtures/simpletuner/keys.json): equal, or one of
the documented deliberate differences (dreamcore/config/defaults.py), which `config check` names when unset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamcore.config import TrainingConfig, load_config
from dreamcore.config import simpletuner_keys as st
from dreamcore.config.datasets import DatasetSpec
from dreamcore.config.defaults import DIFFERENT_DEFAULTS, SAME_MEANING, default_notes
from dreamcore.config.options.model import FLAVOUR_FALLBACK_FAMILIES, MODEL_FLAVOURS

FIXTURE = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "simpletuner" / "keys.json").read_text())
SIMPLETUNER = FIXTURE["config_keys"]


def _simpletuner_spelling(name: str, info) -> str | None:
    """The SimpleTuner key a field honours (its name or an alias) as the registry lists it."""
    alias = info.validation_alias
    spellings = [str(choice) for choice in alias.choices] if alias is not None and hasattr(alias, "choices") else []
    return next((key for key in (name, *spellings) if key in SIMPLETUNER), None)


def honoured_defaults() -> dict[str, tuple[object, object]]:
    """Field -> (dreamcore's default, SimpleTuner's) for every honoured key of the registry."""
    pairs = {}
    for name, info in TrainingConfig.model_fields.items():
        key = _simpletuner_spelling(name, info)
        if key is not None:
            pairs[name] = (info.default, SIMPLETUNER[key])
    for key in st.DATASET_DEFAULT_KEYS:  # top-level keys whose default is every dataset's
        if key in SIMPLETUNER:
            pairs[key] = (DatasetSpec.model_fields[key].default, SIMPLETUNER[key])
    return pairs


def test_the_fixture_is_the_commit_of_the_key_list():
    assert FIXTURE["simpletuner_commit"] == st.SIMPLETUNER_COMMIT
    # every family dreamcore trains has its flavours captured (the fixture also holds families still to come)
    assert set(MODEL_FLAVOURS) <= set(FIXTURE["model_flavours"])


def test_every_honoured_default_is_simpletuners_or_a_documented_difference():
    pairs = honoured_defaults()
    assert {"max_grad_norm", "grad_clip_method", "lora_dropout", "lora_init_type", "lr_power"} <= set(pairs)
    undocumented = {name: pair for name, pair in pairs.items()
                    if pair[0] != pair[1] and name not in DIFFERENT_DEFAULTS and name not in SAME_MEANING}
    assert undocumented == {}, "defaults differ from SimpleTuner's with no entry in dreamcore/config/defaults.py"
    for name, difference in DIFFERENT_DEFAULTS.items():  # the table quotes SimpleTuner's default as captured
        assert difference.simpletuner == pairs[name][1], name
        assert difference.reason
    for name, (theirs, why) in SAME_MEANING.items():
        assert theirs == pairs[name][1] and why, name
    stale = [name for name in (*DIFFERENT_DEFAULTS, *SAME_MEANING)
             if name != "model_flavour" and pairs[name][0] == pairs[name][1]]
    assert stale == [], "listed as different but equal: remove them from dreamcore/config/defaults.py"


def test_the_fidelity_defaults_are_simpletuners():
    config = TrainingConfig()
    assert (config.max_grad_norm, config.grad_clip_method) == (2.0, "value")
    assert (config.lora_dropout, config.lora_init_type, config.lr_power) == (0.1, "default", 0.8)


def test_every_familys_flavours_and_default_are_simpletuners():
    for family, ours in MODEL_FLAVOURS.items():
        captured = FIXTURE["model_flavours"][family]
        assert ours == captured["hub_ids"], family
        if captured["default"] is not None:  # deepfloyd has none: an unset model is an error there, as in SimpleTuner
            assert next(iter(ours)) == captured["default"], f"{family}: the first flavour is the default"
    for family in FLAVOUR_FALLBACK_FAMILIES:
        default = FIXTURE["model_flavours"][family]["default"]
        expected = FIXTURE["model_flavours"][family]["hub_ids"][default]
        # full: a LoRA of Z-Image's default (turbo) flavour also asks for disable_assistant_lora (ZImageOptions)
        assert TrainingConfig(model_family=family, model_type="full").pretrained_model_name_or_path == expected
    assert TrainingConfig(model_family="flux").pretrained_model_name_or_path == "black-forest-labs/flux.1-krea-dev"


def test_notes_name_the_unset_differences_only():
    notes = default_notes(TrainingConfig(pretrained_model_name_or_path="/m", learning_rate=1e-4, seed=3))
    text = "\n".join(notes)
    assert "key 'train_batch_size' unset: dreamcore's default 1 is not SimpleTuner's 4 (" in text
    assert "'learning_rate'" not in text and "'seed'" not in text  # set by the config
    assert "'max_grad_norm'" not in text and "'lora_dropout'" not in text  # SimpleTuner's defaults now
    assert "'model_flavour'" not in text  # a model is given
    # The differences that cannot change the weights share one line.
    (summary,) = [n for n in notes if n.startswith("unset keys that cannot change the trained weights")]
    assert "output_dir 'output' (SimpleTuner 'simpletuner-results')" in summary
    assert "key 'model_flavour' unset" in "\n".join(default_notes(TrainingConfig(model_family="sdxl")))


def test_config_check_prints_the_notes(tmp_path, capsys):
    from dreamcore.cli import main

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"--model_family": "sdxl", "--learning_rate": 1e-4}))
    assert main(["config", "check", str(config)]) == 0
    err = capsys.readouterr().err
    assert "note: key 'train_batch_size' unset: dreamcore's default 1 is not SimpleTuner's 4" in err
    assert "learning_rate' unset" not in err
    assert main(["run", str(config)]) == 2  # no model: refused before anything starts, the notes said first
    err = capsys.readouterr().err
    assert "note: key 'train_batch_size' unset" in err and "pretrained_model_name_or_path" in err


@pytest.mark.parametrize(("value", "scheduler"), [(0, "constant"), (10, "constant_with_warmup")])
def test_constant_with_warm_up_steps_is_simpletuners_constant_with_warmup(value, scheduler):
    assert TrainingConfig(lr_scheduler="constant", lr_warmup_steps=value).lr_scheduler == scheduler
    assert TrainingConfig(lr_warmup_steps=value).lr_scheduler == scheduler


@pytest.mark.parametrize("init", ["loftq", "olora", "pissa"])
def test_lora_inits_that_rewrite_the_base_are_refused_naming_why(tmp_path, init):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"--lora_init_type": init}))
    with pytest.raises(Exception, match=f"lora_init_type '{init}' is refused: it rewrites the base model"):
        load_config(config)
