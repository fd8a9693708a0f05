"""Load SimpleTuner-style config.json and multidatabackend.json files into typed configs.

Keys may carry SimpleTuner's leading "--". Every SimpleTuner key is honoured, refused or ignored
(dreamcore/config/simpletuner_keys.py): a refused key set to something dreamcore does not do raises
ConfigError naming it and why; an ignored one (it cannot change the trained weights) is reported as a
notice; any other key is reported as unknown (never silently dropped). Invalid values raise ConfigError
naming the file, dataset id, key, value and the allowed values.

As SimpleTuner does, top-level resolution/size/crop/caption keys are the defaults of every image-like
dataset that does not set them, datasets with "disabled" (or "disable") true are skipped, and
{model_family}, {output_dir} and {id} in dataset values are replaced.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dreamcore.config import simpletuner_keys as st
from dreamcore.config.defaults import default_notes
from dreamcore.config.datasets import IMAGE_LIKE, DatasetSpec, check_dataset_list
from dreamcore.config.options.model import ModelOptions
from dreamcore.config.options.paths import PathOptions
from dreamcore.config.run import RunConfig
from dreamcore.config.training import TrainingConfig

_PLACEHOLDER = re.compile(r"\{(model_family|output_dir|id)\}")


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
    notices: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    default_notes: list[str] = field(default_factory=list)  # unset keys whose default is not SimpleTuner's

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
    dataset_document: tuple[Any, str] | None = None
    for path in map(Path, paths):
        document = unwrap_store_format(_read_json(path), str(path))
        loaded.sources.append(str(path))
        if isinstance(document, list):
            dataset_document = (document, str(path))
        elif isinstance(document, dict):
            for key, value in _strip_dashes(document, str(path), loaded.warnings).items():
                merged[key] = value
                merged_from[key] = str(path)
        else:
            raise ConfigError([ConfigProblem(str(path), "<root>", f"a JSON {_json_kind(document)} is not a config: "
                                             "it must be a JSON object (config) or list (datasets)")])
    # Datasets are read last: the config's top-level defaults and model_family apply whatever the file order.
    defaults = {key: merged.pop(key) for key in st.DATASET_DEFAULT_KEYS if key in merged}
    if merged or defaults:
        loaded.training = _load_training(merged, merged_from, loaded)
        loaded.default_notes = default_notes(loaded.training)
        backend = loaded.training.data_backend_config
        if backend and dataset_document is None:
            backend_path = _dataset_file(backend, Path(merged_from["data_backend_config"]))
            loaded.sources.append(str(backend_path))
            dataset_document = (unwrap_store_format(_read_json(backend_path), str(backend_path)), str(backend_path))
    if dataset_document is not None:
        document, file = dataset_document
        loaded.datasets = _load_datasets(document, file, loaded, defaults, _placeholders(loaded.training))
    return loaded


def _placeholders(training: TrainingConfig | None) -> dict[str, str]:
    """SimpleTuner's dataset placeholders and their values (the field defaults when no config was given)."""
    if training is not None:
        return {"model_family": training.model_family, "output_dir": training.output_dir}
    return {"model_family": ModelOptions.model_fields["model_family"].default,
            "output_dir": PathOptions.model_fields["output_dir"].default}


def load_run_config(
    *paths: str | Path,
    on_warning: Callable[[str], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> RunConfig:
    """Load files and return the complete RunConfig; unknown-key warnings go to `on_warning`, ignored keys and
    skipped datasets to `on_notice` (default: `on_warning`)."""
    loaded = load_config(*paths)
    for warning in loaded.warnings if on_warning else ():
        on_warning(warning)
    for notice in loaded.notices if (on_notice or on_warning) else ():
        (on_notice or on_warning)(notice)
    return loaded.run_config()


def warn_on_stderr(message: str) -> None:
    """The command line's way of reporting a config warning."""
    print(f"warning: {message}", file=sys.stderr)


def note_on_stderr(message: str) -> None:
    """The command line's way of reporting an ignored key or a skipped dataset."""
    print(f"note: {message}", file=sys.stderr)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "<file>", "file not found")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(str(path), "<file>", "not a UTF-8 text file")]) from None
    except OSError as error:
        raise ConfigError([ConfigProblem(str(path), "<file>", f"cannot read it: {error.strerror}")]) from None
    except json.JSONDecodeError as error:
        raise ConfigError(
            [ConfigProblem(str(path), "<file>", f"not valid JSON: line {error.lineno} column {error.colno}: {error.msg}")]
        ) from None


def unwrap_store_format(document: Any, file: str) -> Any:
    """SimpleTuner's web-UI store files, unwrapped as its loaders do (server app._load_json_config, ConfigStore):
    {"_metadata": ..., "config": {...}} is the config, {"_metadata": ..., "datasets": [...]} a dataset list, and
    {"_metadata": ..., key: value, ...} (the flattened form) the keys beside _metadata. A nested "config" or
    "datasets" dreamcore cannot read that way is refused, naming it, instead of read as an empty config."""
    if not isinstance(document, dict):
        return document
    if "_metadata" in document:
        if isinstance(document.get("config"), dict):
            document = document["config"]
        elif isinstance(document.get("datasets"), list):
            return document["datasets"]
        elif "config" in document or "datasets" in document:
            key = "config" if "config" in document else "datasets"
            raise ConfigError([ConfigProblem(file, key, f"a SimpleTuner store file whose {key!r} is a JSON "
                                             f"{_json_kind(document[key])}: 'config' must be an object of "
                                             "config keys, 'datasets' a list of datasets")])
        else:
            document = {key: value for key, value in document.items() if key != "_metadata"}
        if not document:
            raise ConfigError([ConfigProblem(file, "_metadata", "a SimpleTuner store file with no config keys")])
        return document
    for key in ("config", "datasets"):
        if isinstance(document.get(key), (dict, list)):
            raise ConfigError([ConfigProblem(
                file, key, f"a nested {key!r} {_json_kind(document[key])} is not a shape dreamcore reads: a config "
                "is one object of keys, a dataset list a JSON list (SimpleTuner's store files also carry "
                "\"_metadata\"); move the nested keys to the top level")])
    return document


def _json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    kinds = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _strip_dashes(document: dict[str, Any], file: str, warnings: list[str]) -> dict[str, Any]:
    """SimpleTuner writes keys as "--key"; accept both and warn when both spellings appear."""
    plain: dict[str, Any] = {}
    for key, value in document.items():
        name = key[2:] if key.startswith("--") else key
        if name in plain:
            warnings.append(f"{file}: key {name!r} given twice (with and without '--'); the later value wins")
        plain[name] = value
    return plain


def _load_training(values: dict[str, Any], origin: dict[str, str], loaded: LoadedConfig) -> TrainingConfig:
    known = st.accepted_keys(TrainingConfig)
    problems = []
    for key in sorted(set(values) - known):
        file = origin[key]
        if key in st.REFUSED:
            if not st.asks_for_nothing_more(key, values[key]):
                problems.append(ConfigProblem(file, key, st.refusal(key, values[key], st.REFUSED[key])))
        elif key in st.IGNORED:
            loaded.notices.append(st.ignored_notice(f"{file}: ", key, st.IGNORED[key]))
        elif close := _close_key(key, known | set(st.REFUSED) | set(st.IGNORED) | set(st.DATASET_DEFAULT_KEYS)):
            problems.append(ConfigProblem(file, key, f"unknown key: did you mean {close!r}?"))
        else:
            loaded.warnings.append(f"{file}: unknown key {key!r} ignored (not a dreamcore or SimpleTuner key)")
    kept = {k: v for k, v in values.items() if k in known}
    try:
        training = TrainingConfig.model_validate(kept)
    except ValidationError as error:
        files = sorted(set(origin.values()))
        problems.extend(_problems_from(error, ", ".join(files), None, origin))
    if problems:
        raise ConfigError(problems)
    return training


def _load_datasets(
    document: Any, file: str, loaded: LoadedConfig, defaults: dict[str, Any], placeholders: dict[str, str]
) -> list[DatasetSpec]:
    if not isinstance(document, list):
        raise ConfigError([ConfigProblem(file, "<root>", "a dataset list must be a JSON list of objects")])
    known = st.accepted_keys(DatasetSpec)
    specs: list[DatasetSpec] = []
    problems: list[ConfigProblem] = []
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            problems.append(ConfigProblem(file, f"[{index}]", "each dataset must be a JSON object"))
            continue
        dataset_id = str(entry.get("id", f"#{index}"))
        if entry.get("disabled") or entry.get("disable"):
            loaded.notices.append(f"{file}: dataset {dataset_id!r} is disabled: skipped")
            continue
        entry = _with_placeholders(entry, placeholders | {"id": dataset_id})
        if entry.get("dataset_type", "image") in IMAGE_LIKE:
            entry = {key: value for key, value in defaults.items() if key not in entry} | entry
        for key in sorted(set(entry) - known - set(st.DATASET_LOADER_KEYS)):
            where = f"{file}: dataset {dataset_id!r}: "
            if key in st.DATASET_REFUSED:
                if not st.asks_for_nothing_more(key, entry[key], dataset=True):
                    problems.append(ConfigProblem(file, key, st.refusal(key, entry[key], st.DATASET_REFUSED[key]),
                                                  dataset_id))
            elif key in st.DATASET_IGNORED:
                loaded.notices.append(st.ignored_notice(where, key, st.DATASET_IGNORED[key]))
            elif close := _close_key(key, known | set(st.DATASET_LOADER_KEYS) | set(st.DATASET_REFUSED)
                                     | set(st.DATASET_IGNORED)):
                problems.append(ConfigProblem(file, key, f"unknown key: did you mean {close!r}?", dataset_id))
            else:
                loaded.warnings.append(f"{where}unknown key {key!r} ignored")
        try:
            specs.append(DatasetSpec.model_validate({k: v for k, v in entry.items() if k in known}))
        except ValidationError as error:
            problems.extend(_problems_from(error, file, dataset_id))
    problems.extend(ConfigProblem(file, p.key, str(p), p.dataset_id) for p in check_dataset_list(specs))
    if problems:
        raise ConfigError(problems)
    return specs


def _with_placeholders(value: Any, placeholders: dict[str, str]) -> Any:
    """SimpleTuner's fill_variables_in_config_paths: {model_family}, {output_dir}, {id} in every string value."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda match: placeholders[match.group(1)], value)
    if isinstance(value, list):
        return [_with_placeholders(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: _with_placeholders(item, placeholders) for key, item in value.items()}
    return value


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


def _close_key(key: str, known: set[str]) -> str | None:
    """The known key one or two edits (insert, delete, change, swap two neighbours) from `key`: a typo of it."""
    best = min(((_edits(key, name), name) for name in known), default=None)
    return best[1] if best is not None and 0 < best[0] <= 2 and len(key) > 3 else None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance between a and b (Levenshtein plus adjacent swaps)."""
    if abs(len(a) - len(b)) > 2:
        return 3
    previous2, previous = [], list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _dataset_file(value: str, config_file: Path) -> Path:
    """The data_backend_config file: as given (SimpleTuner resolves from the working directory), else beside
    the config; a ConfigError naming the key and both folders when it is in neither."""
    path = _resolve_relative(value, config_file)
    if not path.exists():
        folders = [str(Path(value).expanduser().parent)] if Path(value).expanduser().is_absolute() else \
            [str(Path.cwd()), str(config_file.parent.resolve())]
        raise ConfigError([ConfigProblem(str(config_file), "data_backend_config",
                                         f"file {value!r} not found (looked in {' and '.join(folders)})")])
    return path


def _resolve_relative(value: str, relative_to: Path) -> Path:
    """SimpleTuner resolves paths from the working directory; we also try the config's folder."""
    candidate = Path(value)
    if candidate.is_absolute():
        return candidate
    beside = relative_to.parent / candidate
    return beside if beside.exists() else candidate


def _names(sources: list[str]) -> str:
    return ", ".join(sources) or "<config>"
