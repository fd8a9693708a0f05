"""A family's behaviour lives in its module: family-only identifiers appear nowhere else.

Each family's home is its module under dreamcore/models/families/ (a package: every file in it) and the
modules of the option groups it names (`ModelFamily.options`, config/options/families/). A group's
identifiers are its config keys and the prefix that marks them (`flux_`, `sd3_`, `t5_`); they may appear
only in the homes of the families that name the group, in the group's own module, and in the shared
module that implements a trait several families use. Generic code asks the family instead. Code,
comments and docstrings alike: prose outside a family that names its keys goes stale with it.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

import dreamcore
from dreamcore.config.options.families import FAMILY_OPTIONS, FlowMatchingOptions, FluxOptions, SD3Options, T5Options
from dreamcore.models import all_families

REPO = Path(dreamcore.__file__).resolve().parents[1]
# The product code: the library, the Prefect tasks and flows, the deployments (tests exercise family features).
SCANNED = ("dreamcore", "tasks", "flows", "deployments")
# The prefix that marks a group's keys; any identifier starting with it is family-only. The flow-matching keys
# are checked by name only: `flow_` also starts Prefect's flow_run and the flow_matching prediction type.
PREFIXES = {FluxOptions: "flux_", SD3Options: "sd3_", T5Options: "t5_"}
# Modules of the families package that implement a trait several families share, by the group of its keys.
TRAIT_MODULES = {
    FlowMatchingOptions: ("dreamcore/models/families/objectives.py",),  # FlowMatchObjective draws the sigmas
    T5Options: ("dreamcore/models/families/captions.py",),  # the T5 caption settings SD3 and Flux share
}
# Where any family-only identifier may appear, and why it cannot be avoided there.
ALLOWED = {
    # SimpleTuner's key vocabulary: every key of its parser, classed honoured / refused / ignored.
    "dreamcore/config/simpletuner_keys.py",
}


def _home(family) -> set[str]:
    """The files of a family's module (every file of a package) and of its option groups' modules."""
    path = Path(_module_of(family).__file__)
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    groups = [Path(inspect.getfile(group)) for group in family.options]
    return {p.resolve().relative_to(REPO).as_posix() for p in (*files, *groups)}


def _module_of(family):
    """The module that defines the family's FAMILY."""
    for module in list(sys.modules.values()):
        if getattr(module, "FAMILY", None) is family:
            return module
    raise LookupError(f"no module defines the {family.name} family")


def _identifiers(group) -> re.Pattern:
    """A group's keys (whole words) and its prefix (any word starting with it), in any case."""
    words = [re.escape(name) + r"\b" for name in group.model_fields]
    if group in PREFIXES:
        words.append(re.escape(PREFIXES[group]))
    return re.compile(r"\b(?:" + "|".join(words) + ")", re.IGNORECASE)


def _owners(group) -> set[str]:
    """Where a group's identifiers may appear."""
    owners = {Path(inspect.getfile(group)).resolve().relative_to(REPO).as_posix(), *TRAIT_MODULES.get(group, ())}
    for family in all_families():
        if group in family.options:
            owners |= _home(family)
    return owners | ALLOWED


def _product_files() -> list[Path]:
    return sorted(p for top in SCANNED if (REPO / top).is_dir() for p in (REPO / top).rglob("*.py"))


def test_every_family_has_a_home_and_every_group_an_owner():
    for family in all_families():
        assert _module_of(family).__name__.startswith("dreamcore.models.families.")
    named = {group for family in all_families() for group in family.options}
    assert named == set(FAMILY_OPTIONS), "every family-only option group is named by a family, and only those"


@pytest.mark.parametrize("group", FAMILY_OPTIONS, ids=lambda g: g.__name__)
def test_family_only_identifiers_stay_in_their_families(group):
    pattern, owners = _identifiers(group), _owners(group)
    offenders = []
    for path in _product_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in owners:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, (f"{group.__name__}'s keys belong to {sorted(owners)}; ask the family (a hook or "
                           "attribute of ModelFamily) instead:\n" + "\n".join(offenders))


def test_the_check_sees_an_identifier_outside_its_family():
    """The pattern catches a family-only key and its prefix, in code and in prose, and nothing generic."""
    pattern = _identifiers(FluxOptions)
    assert pattern.search("if config.flux_attention_masked_training:")
    assert pattern.search("FLUX_LORA_TARGETS[preset]") and pattern.search("(see flux_guidance_mode)")
    assert not pattern.search("write_tiny_flux(folder)") and not pattern.search("family.text_attention_masked(c)")
    assert "dreamcore/train/trainer.py" not in _owners(FluxOptions)
    flow = _identifiers(FlowMatchingOptions)
    assert flow.search("config.flow_schedule_shift") and not flow.search("flow_run.get_id()")
