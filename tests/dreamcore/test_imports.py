"""The import rule of docs/architecture.md ("Imports: one rule"), read from the syntax trees of dreamcore/:
a function-body import must keep a heavy module out of its file, and never repeats a top-level import."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What `dreamcore --help` loads anyway besides the standard library (docs/architecture.md).
LIGHT_THIRD_PARTY = frozenset({"pydantic", "fsspec", "lazy_loader"})


@dataclass(frozen=True)
class Import:
    file: str
    line: int
    modules: tuple[str, ...]  # the module a statement imports, then for `from M import n` each M.n
    at_top: bool  # module level, outside `if TYPE_CHECKING:`
    in_function: bool


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> tuple[str, ...]:
    if isinstance(node, ast.Import):
        return tuple(alias.name for alias in node.names)
    base = node.module or ""
    if node.level:
        package = importer.split(".")
        package = package[: len(package) - (0 if is_package else 1) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    return (base, *(f"{base}.{alias.name}" for alias in node.names))


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(root: Path, path: Path) -> list[Import]:
    """Every import statement of a file, with where it sits."""
    name, is_package = module_name(root, path), path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, at_top: bool, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(Import(str(path.relative_to(root)), child.lineno, _imported(child, name, is_package),
                                    at_top, in_function))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False, True)
            elif _is_type_checking(child):
                for statement in child.body:
                    visit(ast.Module(body=[statement], type_ignores=[]), False, in_function)
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), at_top, in_function)
            else:
                visit(child, at_top, in_function)

    visit(ast.parse(path.read_text(), str(path)), True, False)
    return found


@cache
def library(root: Path) -> dict[str, list[Import]]:
    """The import statements of every module under root/dreamcore, by module name."""
    return {module_name(root, path): imports_of(root, path) for path in sorted((root / "dreamcore").rglob("*.py"))}


def _dreamcore_module(root: Path, names: tuple[str, ...]) -> str:
    """The deepest module a statement names (`from dreamcore.x import y` names dreamcore.x.y when y is one)."""
    return [name for name in names if name in library(root)][-1]


@cache
def loaded_by(root: Path, *modules: str) -> tuple[frozenset[str], frozenset[str]]:
    """(dreamcore modules, heavy third-party packages) importing `modules` loads: their top-level imports and
    their packages', followed through dreamcore."""
    heavy: set[str] = set()
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        parts = current.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        for found in library(root).get(current, []):
            top = found.modules[0].split(".")[0]
            if not found.at_top or top == "__future__":
                continue
            if top == "dreamcore":
                pending.append(_dreamcore_module(root, found.modules))
            elif top not in sys.stdlib_module_names and top not in LIGHT_THIRD_PARTY:
                heavy.add(top)
    return frozenset(seen), frozenset(heavy)


def heavy_modules(root: Path, module: str) -> frozenset[str]:
    """The heavy third-party packages importing `module` loads."""
    return loaded_by(root, module)[1]


def command_line_modules(root: Path) -> frozenset[str]:
    """What every `dreamcore` command loads: cli.py, the modules whose `register` adds subcommands, and what
    they load at the top. Their handlers import the rest."""
    tree = ast.parse((root / "dreamcore" / "cli.py").read_text())
    registering = next(ast.literal_eval(node.value) for node in tree.body
                       if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "COMMAND_MODULES")
    return loaded_by(root, "dreamcore.cli", *registering)[0]


def repeated(root: Path, importer: str, statement: Import) -> str | None:
    """Rule 3: a function-body import of a module the file imports at the top."""
    at_top = {found.modules[0] for found in library(root)[importer] if found.at_top}
    return "already imported at the top of the file" if statement.modules[0] in at_top else None


def buys_nothing(root: Path, importer: str, statement: Import) -> str | None:
    """Rule 2: a function-body import of the standard library, a light third-party module or a dreamcore
    module no heavier than the importer; except that the modules every command loads import the others inside
    the function that needs them (`dreamcore --help` stays at the modules it needs)."""
    top = statement.modules[0].split(".")[0]
    if top in sys.stdlib_module_names or top in LIGHT_THIRD_PARTY:
        return "the standard library, pydantic, fsspec and lazy_loader are imported at the top"
    if top != "dreamcore":
        return None
    imported = _dreamcore_module(root, statement.modules)
    if importer in command_line_modules(root) and imported not in command_line_modules(root):
        return None
    if heavy_modules(root, imported) <= heavy_modules(root, importer):
        return f"{imported} loads no heavy module that {importer} does not: import it at the top"
    return None


# Files the sweep of issue 25 has not reached yet (other branches were changing them): remove a file from this
# list once its function-body imports follow the rule.
NOT_YET_SWEPT: frozenset[str] = frozenset()


def violations(root: Path, rule, skipped: frozenset[str] = frozenset()) -> list[str]:
    return [f"{statement.file}:{statement.line} {problem}"
            for importer, statements in library(root).items() for statement in statements
            if statement.in_function and statement.file not in skipped and (problem := rule(root, importer, statement))]


def type_checking_repeats(path: Path) -> list[str]:
    """Names a module-level `if TYPE_CHECKING:` block imports that a top-level import already binds."""
    tree = ast.parse(path.read_text(), str(path))

    def bound(statement: ast.Import | ast.ImportFrom) -> set[str]:
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}

    at_top = set().union(*(bound(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))))
    return [f"{path.name}:{node.lineno} {sorted(bound(node) & at_top)}"
            for block in tree.body if _is_type_checking(block) for node in block.body
            if isinstance(node, (ast.Import, ast.ImportFrom)) and bound(node) & at_top]


def test_the_heavy_modules_are_found_through_the_top_level_imports():
    # data/images.py decodes with PIL and numpy at the top; the config loads neither; the trainer is torch.
    assert {"PIL", "numpy"} <= heavy_modules(REPO, "dreamcore.data.images")
    assert {"PIL", "numpy"} <= heavy_modules(REPO, "dreamcore.data.ingest")  # through data.images
    assert heavy_modules(REPO, "dreamcore.config.loader") == frozenset()
    assert "torch" in heavy_modules(REPO, "dreamcore.train.trainer")


def test_the_command_line_modules_are_what_help_loads():
    # the static walk and a real `dreamcore --help` process agree, so the exception in rule 2 covers no more
    code = ("import sys\nfrom dreamcore.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dreamcore'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip().splitlines()[-1] == str(sorted(command_line_modules(REPO)))
    assert not command_line_modules(REPO) & {"dreamcore.evaluate.stage", "dreamcore.data.images", "dreamcore.models"}


def test_no_function_body_import_repeats_a_top_level_import():
    assert violations(REPO, repeated, NOT_YET_SWEPT) == []


def test_no_type_checking_import_repeats_a_top_level_one(tmp_path):
    assert [found for path in sorted((REPO / "dreamcore").rglob("*.py")) for found in type_checking_repeats(path)] == []
    module = tmp_path / "module.py"
    module.write_text("from typing import TYPE_CHECKING\n\nfrom dreamcore.storage import ArtifactStore\n\n"
                      "if TYPE_CHECKING:\n    from dreamcore.config import RunConfig\n"
                      "    from dreamcore.storage import ArtifactStore\n")
    assert type_checking_repeats(module) == ["module.py:7 ['ArtifactStore']"]


def test_a_function_body_import_keeps_a_heavy_module_out():
    assert violations(REPO, buys_nothing, NOT_YET_SWEPT) == []


def _with_function(root: Path, module: str, body: str) -> int:
    """Append `def _late():` with `body` (lines) to root/dreamcore/<module>; the line number of its first line."""
    path = root / "dreamcore" / module
    source = path.read_text()
    path.write_text(source + "\n\ndef _late():\n" + "".join(f"    {line}\n" for line in body))
    library.cache_clear()
    loaded_by.cache_clear()
    return source.count("\n") + 4


def _found_in(root: Path, rule, module: str, first: int) -> list[str]:
    file = f"dreamcore/{module}:"
    return [found.removeprefix(file) for found in violations(root, rule)
            if found.startswith(file) and int(found.split(" ")[0].removeprefix(file)) >= first]


def test_the_rule_sees_a_repeated_a_cheap_and_a_needed_function_body_import(tmp_path):
    shutil.copytree(REPO / "dreamcore", tmp_path / "dreamcore", ignore=shutil.ignore_patterns("__pycache__"))
    first = _with_function(tmp_path, "data/captions.py", [
        "import json", "from dreamcore.config import loader", "from dreamcore.data.images import load_rgb",
        "import torch", "", "return json, loader, load_rgb, torch"])
    assert _found_in(tmp_path, buys_nothing, "data/captions.py", first) == [
        f"{first} the standard library, pydantic, fsspec and lazy_loader are imported at the top",
        f"{first + 1} dreamcore.config.loader loads no heavy module that dreamcore.data.captions does not: import it "
        "at the top"]
    assert _found_in(tmp_path, repeated, "data/captions.py", first) == []

    # a command module imports a handler's module inside it unless every command loads that module anyway
    first = _with_function(tmp_path, "gc/commands.py", [
        "from dreamcore.train import stage", "from dreamcore.storage import store", "", "return stage, store"])
    assert _found_in(tmp_path, buys_nothing, "gc/commands.py", first) == [
        f"{first + 1} dreamcore.storage.store loads no heavy module that dreamcore.gc.commands does not: import it "
        "at the top"]

    first = _with_function(tmp_path, "gc/plan.py", ["import json", "", "return json"])
    assert _found_in(tmp_path, repeated, "gc/plan.py", first) == [f"{first} already imported at the top of the file"]
