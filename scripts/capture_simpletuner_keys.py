"""Capture SimpleTuner's config.json keys from a SimpleTuner checkout, into tests/fixtures/simpletuner/keys.json.

SimpleTuner builds its argument parser from a field registry (simpletuner_sdk/server/services/field_registry
and helpers/models/field_registry): every ConfigField with an arg_name starting with "--" becomes an option,
and its aliases are accepted spellings too. This reads those ConfigField(...) calls statically (no SimpleTuner
install needed), unrolling the literal `for` loops some registries use. Dataset keys are kept as listed in
the fixture (read from SimpleTuner's documentation/DATALOADER.md and helpers/data_backend/config/).

Each key's default is its ConfigField's default_value. Each model family's flavours (HUGGINGFACE_PATHS) and
default flavour (DEFAULT_MODEL_FLAVOUR) are read from the model classes registered with
ModelRegistry.register(family, Class) in simpletuner/helpers/models/<family>/model.py, for the families
dreamcore trains (FAMILIES).

usage: python scripts/capture_simpletuner_keys.py SIMPLETUNER_CHECKOUT [COMMIT]
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "simpletuner" / "keys.json"
FAMILIES = ("sd1x", "sd2x", "sdxl", "sd3", "flux", "kolors", "deepfloyd", "qwen_image", "flux2", "chroma", "z_image",
            "lumina2", "sana", "hidream")
REGISTRIES = ("simpletuner/simpletuner_sdk/server/services/field_registry", "simpletuner/helpers/models/field_registry")


def _value(node: ast.expr | None, names: dict):
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        try:
            return eval(compile(ast.Expression(node), "<field>", "eval"), {"range": range}, dict(names))  # noqa: S307
        except Exception:
            return None


def _fields(node: ast.AST, names: dict, found: dict[str, dict]) -> None:
    if isinstance(node, ast.For):
        try:
            items = list(eval(compile(ast.Expression(node.iter), "<loop>", "eval"), {"range": range}, {}))  # noqa: S307
        except Exception:
            items = None
        if items is not None:
            for item in items:
                inner = dict(names)
                targets = [node.target] if isinstance(node.target, ast.Name) else node.target.elts
                values = [item] if isinstance(node.target, ast.Name) else item
                inner.update({target.id: value for target, value in zip(targets, values)})
                for statement in node.body:
                    _fields(statement, inner, found)
            return
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ConfigField":
        keywords = {k.arg: k.value for k in node.keywords}
        name, arg_name = _value(keywords.get("name"), names), _value(keywords.get("arg_name"), names)
        if isinstance(name, str) and isinstance(arg_name, str) and arg_name.startswith("--"):
            aliases = _value(keywords.get("aliases"), names) or []
            found[name] = {"keys": [arg_name[2:], *(a[2:] for a in aliases)], "default": _value(keywords.get("default_value"), names)}
    for child in ast.iter_child_nodes(node):
        _fields(child, names, found)


def _class_constants(tree: ast.Module) -> dict[str, dict]:
    """Class name -> its literal DEFAULT_MODEL_FLAVOUR and HUGGINGFACE_PATHS."""
    constants: dict[str, dict] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                # `X = {...}` or the annotated `X: dict = {...}` (Z-Image's model class)
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    target = statement.targets[0]
                elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                    target = statement.target
                else:
                    continue
                name = getattr(target, "id", None)
                if name in ("DEFAULT_MODEL_FLAVOUR", "HUGGINGFACE_PATHS"):
                    constants.setdefault(node.name, {})[name] = _value(statement.value, {})
    return constants


def model_flavours(checkout: str) -> dict[str, dict]:
    """family -> {"default": its DEFAULT_MODEL_FLAVOUR, "hub_ids": its HUGGINGFACE_PATHS}, for FAMILIES."""
    flavours: dict[str, dict] = {}
    for path in sorted((Path(checkout) / "simpletuner/helpers/models").glob("*/model.py")):
        tree = ast.parse(path.read_text())
        constants = _class_constants(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "register"
                    and getattr(node.func.value, "id", None) == "ModelRegistry" and len(node.args) == 2):
                family, cls = _value(node.args[0], {}), getattr(node.args[1], "id", None)
                if family in FAMILIES and cls in constants:
                    found = constants[cls]
                    flavours[family] = {"default": found.get("DEFAULT_MODEL_FLAVOUR"),
                                        "hub_ids": found.get("HUGGINGFACE_PATHS")}
    return dict(sorted(flavours.items()))


def main(checkout: str, commit: str = "") -> None:
    found: dict[str, dict] = {}
    for registry in REGISTRIES:
        for path in sorted((Path(checkout) / registry).rglob("*.py")):
            _fields(ast.parse(path.read_text()), {}, found)
    fixture = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {"dataset_keys": []}
    defaults = {}
    for field in found.values():
        for key in field["keys"]:
            defaults[key] = field["default"]
    fixture.update(simpletuner_commit=commit or fixture.get("simpletuner_commit", ""),
                   config_keys=dict(sorted(defaults.items())), model_flavours=model_flavours(checkout))
    FIXTURE.write_text(json.dumps(fixture, indent=1, default=str) + "\n")
    print(f"{len(defaults)} config keys, {len(fixture['dataset_keys'])} dataset keys -> {FIXTURE}")


if __name__ == "__main__":
    main(*sys.argv[1:])
