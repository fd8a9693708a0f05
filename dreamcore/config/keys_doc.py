"""docs/simpletuner-keys.md, rendered from the key tables (simpletuner_keys.py) and the config models.

Regenerate with `python -m dreamcore.config.keys_doc > docs/simpletuner-keys.md`; a test fails when the
file and the data disagree.
"""

from __future__ import annotations

from dreamcore.config import defaults
from dreamcore.config import simpletuner_keys as st
from dreamcore.config.datasets import DatasetSpec
from dreamcore.config.options.model import FLAVOUR_FALLBACK_FAMILIES, MODEL_FLAVOURS
from dreamcore.config.training import TrainingConfig

_HEADER = """# SimpleTuner keys in dreamcore

Generated from `dreamcore/config/simpletuner_keys.py` by `python -m dreamcore.config.keys_doc`; do not edit.

Every key of SimpleTuner's `config.json` (its argument parser, SimpleTuner commit {commit}) and of its
`multidatabackend.json` entries is in exactly one class:

- **honoured**: a dreamcore field (SimpleTuner's spelling or an alias), a top-level dataset default, or a
  dataset's `disabled`/`disable` switch. `dreamcore config check` prints the resolved value.
- **refused**: it would change training and dreamcore does not do it. Setting it to anything but a value that
  means what dreamcore does (unset, false, SimpleTuner's default) is an error naming the key and the reason.
- **ignored**: it cannot change the trained weights; loading reports `key '...' ignored: cannot change the
  trained weights (reason)` and drops it.

Keys that are none of these are reported as unknown (a warning, never silently dropped).
"""


def honoured_config_keys() -> dict[str, str]:
    """config.json keys dreamcore takes, with what they become."""
    keys = {key: "training field" for key in st.accepted_keys(TrainingConfig)}
    keys.update({key: "default of every image-like dataset" for key in st.DATASET_DEFAULT_KEYS})
    return keys


def honoured_dataset_keys() -> dict[str, str]:
    """multidatabackend.json keys dreamcore takes, with what they become."""
    keys = {key: "dataset field" for key in st.accepted_keys(DatasetSpec)}
    keys.update({key: "skips the dataset when true" for key in st.DATASET_LOADER_KEYS})
    return keys


def render() -> str:
    """The whole markdown document."""
    parts = [_HEADER.format(commit=st.SIMPLETUNER_COMMIT[:9])]
    for title, honoured, refused, ignored in (
        ("config.json", honoured_config_keys(), st.REFUSED, st.IGNORED),
        ("multidatabackend.json (per dataset)", honoured_dataset_keys(), st.DATASET_REFUSED, st.DATASET_IGNORED),
    ):
        rows = {key: ("honoured", what) for key, what in honoured.items()}
        rows.update({key: ("refused", reason) for key, reason in refused.items() if key not in rows})
        rows.update({key: ("ignored", reason) for key, reason in ignored.items() if key not in rows})
        parts.append(f"\n## {title}\n\n| key | class | what it becomes / why |\n|---|---|---|")
        parts.extend(f"| `{key}` | {kind} | {text.replace('|', '/')} |" for key, (kind, text) in sorted(rows.items()))
    parts.append(_defaults_section())
    return "\n".join(parts) + "\n"


def _defaults_section() -> str:
    """Where an honoured key's default is not SimpleTuner's (dreamcore/config/defaults.py), and the flavours."""
    lines = ["\n## Defaults\n\nEvery honoured key defaults to SimpleTuner's default (its field registry's "
             "`default_value`), except these deliberate differences; `config check` and `run` print a note for each "
             "one a config leaves unset.\n", "| key | dreamcore | SimpleTuner | why |", "|---|---|---|---|"]
    for key, difference in defaults.DIFFERENT_DEFAULTS.items():
        ours = TrainingConfig.model_fields[key].default
        lines.append(f"| `{key}` | `{ours!r}` | `{difference.simpletuner!r}` | {difference.reason.replace('|', '/')} |")
    lines += ["\nSpelled differently, meaning the same:\n", "| key | dreamcore | SimpleTuner | why the same |",
              "|---|---|---|---|"]
    for key, (theirs, why) in defaults.SAME_MEANING.items():
        lines.append(f"| `{key}` | `{TrainingConfig.model_fields[key].default!r}` | `{theirs!r}` | {why} |")
    lines += ["\n`model_flavour` (SimpleTuner's hub ids; the first is the family's default flavour, used when no "
              "model is given for " + " and ".join(FLAVOUR_FALLBACK_FAMILIES) + "):\n",
              "| model_family | flavours |", "|---|---|"]
    for family, flavours in MODEL_FLAVOURS.items():
        lines.append(f"| {family} | " + ", ".join(f"`{name}` {hub}" for name, hub in flavours.items()) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
