"""The dependency order inside dreamcore (docs/architecture.md), enforced by import-linter's contracts in pyproject.toml:
sub-packages import only downward, never Prefect, and the modules of one sub-package import each other without a circle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    # lint-imports analyses the `dreamcore` importable from its working directory.
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=tree, capture_output=True, text=True,
                          timeout=120)


def _copy_of_the_library(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "dreamcore", tree / "dreamcore", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_library_keeps_its_layers_has_no_import_circle_and_never_imports_prefect():
    run = _lint(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


def _lint_with(tmp_path: Path, module: str, function: str) -> subprocess.CompletedProcess:
    """lint-imports on a copy of the library where `module` (a path under dreamcore/) gains `function`."""
    tree = _copy_of_the_library(tmp_path)
    path = tree / "dreamcore" / module
    path.write_text(path.read_text() + "\n\n" + function)
    return _lint(tree)


def test_an_upward_import_inside_a_function_breaks_the_build(tmp_path):
    run = _lint_with(tmp_path, "cache/batches.py",
                     "def _upward():\n    from dreamcore.evaluate import plans\n\n    return plans\n")
    assert run.returncode == 1
    assert "dreamcore.cache is not allowed to import dreamcore.evaluate" in run.stdout


def test_an_import_circle_inside_a_subpackage_breaks_the_build_even_through_a_function(tmp_path):
    # cache.batches imports cache.batch at the top; the way back inside a function closes a circle.
    run = _lint_with(tmp_path, "cache/batch.py",
                     "def _circle():\n    from dreamcore.cache import batches\n\n    return batches\n")
    assert run.returncode == 1
    assert "No cycles are allowed in dreamcore.cache." in run.stdout
    assert ".batch -> .batches" in run.stdout or ".batches -> .batch" in run.stdout


def test_a_new_subpackage_must_be_placed_in_the_order(tmp_path):
    tree = _copy_of_the_library(tmp_path)
    (tree / "dreamcore" / "unplaced").mkdir()
    (tree / "dreamcore" / "unplaced" / "__init__.py").write_text("")
    run = _lint(tree)
    assert run.returncode == 1
    assert "dreamcore.unplaced" in run.stdout


def test_the_library_importing_prefect_breaks_the_build(tmp_path):
    run = _lint_with(tmp_path, "train/stage.py",
                     "def _flow_run_id():\n    import prefect.context\n\n    return prefect.context\n")
    assert run.returncode == 1
    assert "dreamcore is not allowed to import prefect" in run.stdout
