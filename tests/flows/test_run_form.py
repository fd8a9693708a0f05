"""The dreambooth deployment's run form (the JSON schema Prefect builds from the flow's RunConfig parameter): what a
DreamBooth user sets first, then the rest in titled groups by purpose, ordered by `position` as Prefect 3's UI
sorts them; the config file's keys are unchanged."""

from __future__ import annotations

from prefect.utilities.callables import parameter_schema

from dreamcore.config import TrainingConfig
from dreamcore.config.form import FORM_GROUPS, OTHER_GROUP
from dreamcore.config.options.train import FAMILY_ONLY_FIELDS
from flows.dreambooth import dreambooth

ESSENTIALS = ["model_family", "pretrained_model_name_or_path", "model_flavour", "model_type", "lora_type", "lora_rank",
              "learning_rate", "max_train_steps", "train_batch_size", "validation_prompt"]


def _training_form() -> dict[str, dict]:
    schema = parameter_schema(dreambooth.fn).model_dump()
    assert schema["properties"]["config"]["$ref"] == "#/definitions/RunConfig"
    run = schema["definitions"]["RunConfig"]["properties"]
    assert list(run) == ["training", "datasets"]
    return schema["definitions"]["TrainingConfig"]["properties"]


def _as_the_ui_lists_them(properties: dict[str, dict]) -> list[str]:
    """Prefect's SchemaFormProperties: a stable sort of the properties by position (missing: 0)."""
    return [name for name, _ in sorted(properties.items(), key=lambda item: item[1].get("position", 0))]


def test_the_form_starts_with_what_a_dreambooth_user_sets():
    listed = _as_the_ui_lists_them(_training_form())
    assert listed[:len(ESSENTIALS)] == ESSENTIALS
    assert listed.index("refiner_training") > listed.index("learning_rate")


def test_the_rest_follows_in_titled_groups_in_table_order():
    form = _training_form()
    listed = _as_the_ui_lists_them(form)
    assert list(form) == listed  # the schema's own order is the form's too (other renderers, JSON views)
    assert [form[name]["position"] for name in listed] == list(range(len(listed)))
    groups = [form[name]["title"].split(" · ", 1)[0] for name in listed]
    seen = list(dict.fromkeys(groups))
    assert seen == [title for title, _ in FORM_GROUPS]  # each group once, contiguous, in table order
    assert OTHER_GROUP not in groups, "a training field no form group names: place it in dreamcore/config/form.py"
    assert form["lora_rank"]["title"] == "Essentials · Lora Rank"
    assert form["max_grad_norm"]["title"] == "Optimiser · Max Grad Norm"
    assert {name for name in listed if groups[listed.index(name)] == "Family-only (SD3, Flux)"} == set(FAMILY_ONLY_FIELDS)
    assert groups[listed.index("refiner_training_strength")] == "Refiner"
    assert groups[listed.index("data_backend_config")] == "Data"
    assert groups[listed.index("evaluation_type")] == "Validation and evaluation"


def test_the_config_keys_are_unchanged():
    form = _training_form()
    assert set(form) == set(TrainingConfig.model_fields)
    assert TrainingConfig.model_validate({"lora_rank": 8, "learning_rate": 3e-4}).lora_rank == 8
