"""Load SimpleTuner-style config.json and multidatabackend.json files into typed configs.

Keys may carry SimpleTuner's leading "--". Unknown keys are reported as warnings (never silently
dropped); invalid values raise ConfigError naming the file, dataset id, key, value and the
allowed values.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dreamcore.config.datasets import DatasetSpec, check_dataset_list
from dreamcore.config.run import RunConfig
from dreamcore.config.training import TrainingConfig


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a config file, in the user's terms."""

    file: str
    key: str
    message: str
    dataset_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}: "
        if self.dataset_id is not None:
            where += f"dataset {self.dataset_id!r}: "
        return f"{where}key {self.key!r}: {self.message}"


class ConfigError(ValueError):
    """One or more config problems; str() lists them all (and the unknown-key warnings seen so far)."""

    def __init__(self, problems: list[ConfigProblem], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = list(warnings or [])
        lines = [f"  - {p}" for p in problems] + [f"  (warning) {w}" for w in self.warnings]
        super().__init__("invalid config:\n" + "\n".join(lines))


@dataclass
class LoadedConfig:
    """The result of loading config files: what was understood and what was not."""

    training: TrainingConfig | None = None
    datasets: list[DatasetSpec] | None = None
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def run_config(self) -> RunConfig:
        """The complete run config; ConfigError if a required part is missing."""
        missing = []
        if self.training is None or not self.training.pretrained_model_name_or_path:
            missing.append(ConfigProblem(_names(self.sources), "pretrained_model_name_or_path", "is required to run"))
        if not self.datasets:
            missing.append(
                ConfigProblem(_names(self.sources), "data_backend_config", "no datasets: give a multidatabackend.json")
            )
        if missing:
            raise ConfigError(missing)
        try:
            return RunConfig(training=self.training, datasets=self.datasets)
        except ValidationError as error:
            raise ConfigError(_problems_from(error, _names(self.sources), None)) from None


def load_config(*paths: str | Path) -> LoadedConfig:
    """Load config files in order: JSON objects are training configs (later keys override earlier
    ones), JSON lists are dataset lists. A config's data_backend_config is followed."""
    loaded = LoadedConfig()
    try:
        return _load_into(loaded, paths)
    except ConfigError as error:
        raise ConfigError(error.problems, loaded.warnings) from None


def _load_into(loaded: LoadedConfig, paths: tuple[str | Path, ...]) -> LoadedConfig:
    merged: dict[str, Any] = {}
    merged_from: dict[str, str] = {}
    for path in map(Path, paths):
        document = _read_json(path)
        loaded.sources.append(str(path))
        if isinstance(document, list):
            loaded.datasets = _load_datasets(document, str(path), loaded.warnings)
        elif isinstance(document, dict):
            for key, value in _strip_dashes(document, str(path), loaded.warnings).items():
                merged[key] = value
                merged_from[key] = str(path)
        else:
            raise ConfigError([ConfigProblem(str(path), "<root>", "must be a JSON object (config) or list (datasets)")])
    if merged:
        loaded.training = _load_training(merged, merged_from, loaded.warnings)
        backend = loaded.training.data_backend_config
        if backend and loaded.datasets is None:
            backend_path = _resolve_relative(backend, Path(merged_from["data_backend_config"]))
            loaded.sources.append(str(backend_path))
            loaded.datasets = _load_datasets(_read_json(backend_path), str(backend_path), loaded.warnings)
    return loaded


def load_run_config(*paths: str | Path, on_warning: Callable[[str], None] | None = None) -> RunConfig:
    """Load files and return the complete RunConfig; unknown-key warnings go to `on_warning`."""
    loaded = load_config(*paths)
    for warning in loaded.warnings if on_warning else ():
        on_warning(warning)
    return loaded.run_config()


def warn_on_stderr(message: str) -> None:
    """The command line's way of reporting a config warning."""
    print(f"warning: {message}", file=sys.stderr)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "<file>", "file not found")]) from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            [ConfigProblem(str(path), "<file>", f"not valid JSON: line {error.lineno} column {error.colno}: {error.msg}")]
        ) from None


def _strip_dashes(document: dict[str, Any], file: str, warnings: list[str]) -> dict[str, Any]:
    """SimpleTuner writes keys as "--key"; accept both and warn when both spellings appear."""
    plain: dict[str, Any] = {}
    for key, value in document.items():
        name = key[2:] if key.startswith("--") else key
        if name in plain:
            warnings.append(f"{file}: key {name!r} given twice (with and without '--'); the later value wins")
        plain[name] = value
    return plain


def _load_training(values: dict[str, Any], origin: dict[str, str], warnings: list[str]) -> TrainingConfig:
    known = _accepted_keys(TrainingConfig)
    for key in sorted(set(values) - known):
        warnings.append(f"{origin[key]}: unknown key {key!r} ignored (not a dreamcore or supported SimpleTuner key)")
    kept = {k: v for k, v in values.items() if k in known}
    try:
        return TrainingConfig.model_validate(kept)
    except ValidationError as error:
        files = sorted(set(origin.values()))
        raise ConfigError(_problems_from(error, ", ".join(files), None, origin)) from None


def _load_datasets(document: Any, file: str, warnings: list[str]) -> list[DatasetSpec]:
    if not isinstance(document, list):
        raise ConfigError([ConfigProblem(file, "<root>", "a dataset list must be a JSON list of objects")])
    known = _accepted_keys(DatasetSpec)
    specs: list[DatasetSpec] = []
    problems: list[ConfigProblem] = []
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            problems.append(ConfigProblem(file, f"[{index}]", "each dataset must be a JSON object"))
            continue
        dataset_id = str(entry.get("id", f"#{index}"))
        for key in sorted(set(entry) - known):
            warnings.append(f"{file}: dataset {dataset_id!r}: unknown key {key!r} ignored")
        try:
            specs.append(DatasetSpec.model_validate({k: v for k, v in entry.items() if k in known}))
        except ValidationError as error:
            problems.extend(_problems_from(error, file, dataset_id))
    problems.extend(ConfigProblem(file, p.key, str(p), p.dataset_id) for p in check_dataset_list(specs))
    if problems:
        raise ConfigError(problems)
    return specs


def _accepted_keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        alias = info.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            keys.update(str(choice) for choice in alias.choices)
    return keys


def _problems_from(
    error: ValidationError, file: str, dataset_id: str | None, origin: dict[str, str] | None = None
) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<entry>"
        message = item["msg"].removeprefix("Value error, ")
        if item["loc"]:
            message = f"value {item['input']!r}: {message}"
        expected = item.get("ctx", {}).get("expected")
        if expected and expected not in message:
            message += f" (allowed: {expected})"
        source = origin.get(str(item["loc"][0]), file) if origin and item["loc"] else file
        problems.append(ConfigProblem(source, key, message, dataset_id))
    return problems


def _resolve_relative(value: str, relative_to: Path) -> Path:
    """SimpleTuner resolves paths from the working directory; we also try the config's folder."""
    candidate = Path(value)
    if candidate.is_absolute():
        return candidate
    beside = relative_to.parent / candidate
    return beside if beside.exists() else candidate


def _names(sources: list[str]) -> str:
    return ", ".join(sources) or "<config>"
