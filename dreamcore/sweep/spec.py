"""SWEEP.json: which training keys to vary, how (grid or seeded random), and how to rank the runs."""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dreamcore.config import ConfigError, RunConfig, TrainingConfig
from dreamcore.config.loader import ConfigProblem
from dreamcore.config.options.model import ModelOptions
from dreamcore.config.options.train import TrainOptions, changes_trained_weights
from dreamcore.storage import digest_of


class Range(BaseModel):
    """A random-search interval: uniform in [low, high], or log-uniform with log=true; integer rounds."""

    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low or (self.log and self.low <= 0):
            raise ValueError(f"range [{self.low}, {self.high}] needs low <= high (and low > 0 with log)")
        return self

    def draw(self, rng: random.Random) -> float | int:
        value = (math.exp(rng.uniform(math.log(self.low), math.log(self.high))) if self.log
                 else rng.uniform(self.low, self.high))
        return round(value) if self.integer else value


class SweepSpec(BaseModel):
    """The content of SWEEP.json."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="The sweep's name: its record is runs/<name>/ in the storage root.")
    mode: Literal["grid", "random"] = Field("grid", description="grid: every combination; random: `samples` draws.")
    parameters: dict[str, list[Any] | Range] = Field(
        description="Training key -> values (a list), or for random search a {low, high, log, integer} range.")
    samples: int | None = Field(None, ge=1, description="random mode: how many points to draw.")
    seed: int = Field(0, description="random mode: the draws' seed (the same seed gives the same points).")
    rank_by: list[str] = Field(["eval_loss", "clip_mean"], min_length=1,
                               description="Evaluate summary columns to rank by, first decisive; eval_loss is "
                               "lower-better, any other metric higher-better.")
    max_concurrent: int = Field(1, ge=1, description="Trainings at a time: 1 in the flow's process, more in as "
                                "many worker processes.")
    grid_runs: int = Field(4, ge=1, description="How many of the best runs the image grid shows side by side.")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if not self.parameters:
            raise ValueError("parameters is empty: name at least one training key to vary")
        for key, values in self.parameters.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"parameters.{key} has no values")
            if isinstance(values, Range) and self.mode == "grid":
                raise ValueError(f"parameters.{key} is a range: grid mode needs a list of values (or mode 'random')")
        if self.mode == "random" and self.samples is None:
            raise ValueError("mode 'random' needs samples: how many points to draw")
        return self


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its id, the keys it sets and the run config it trains."""

    id: str
    values: dict[str, Any]
    config: RunConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.values.items())


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate SWEEP.json; a problem is a ConfigError naming the file and key."""
    path = Path(path)
    try:
        return SweepSpec.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError([ConfigProblem(str(path), "(file)", f"cannot read the sweep: {error}")]) from error
    except ValidationError as error:
        raise ConfigError([ConfigProblem(str(path), ".".join(str(p) for p in e["loc"]) or "(file)", e["msg"])
                           for e in error.errors()]) from error


def sweepable_keys() -> set[str]:
    """Training keys a sweep may vary: those that change only the trained weights (the train stage key's
    fields), so the stages before training (ingest, masks, class images, caches) are shared by every point."""
    read_before_training = {"pretrained_model_name_or_path", "model_flavour", "model_family", "text_encoder_1_precision",
                            "text_encoder_2_precision", "text_encoder_3_precision"}
    names = set(ModelOptions.model_fields) | set(TrainOptions.model_fields)
    return {n for n in names - read_before_training if changes_trained_weights(n)}


def _combinations(spec: SweepSpec) -> list[dict[str, Any]]:
    keys = list(spec.parameters)
    if spec.mode == "grid":
        return [dict(zip(keys, values)) for values in itertools.product(*(spec.parameters[k] for k in keys))]
    rng = random.Random(spec.seed)
    return [{k: (v.draw(rng) if isinstance(v, Range) else rng.choice(v)) for k, v in spec.parameters.items()}
            for _ in range(spec.samples or 0)]


def sweep_points(config: RunConfig, spec: SweepSpec) -> list[SweepPoint]:
    """Every point of the sweep as a validated run config (duplicates dropped, order kept)."""
    allowed = sweepable_keys()
    refused = sorted(set(spec.parameters) - allowed)
    if refused:
        raise ConfigError([ConfigProblem(f"sweep {spec.name}", f"parameters.{key}", "cannot be swept: not a "
                                         "training key that changes only the trained weights (the stages before "
                                         "training would differ per point)") for key in refused])
    points, seen = [], set()
    base = config.training.model_dump()
    for values in _combinations(spec):
        point_id = "p" + digest_of(values)[:10]
        if point_id in seen:
            continue
        seen.add(point_id)
        try:
            training = TrainingConfig.model_validate(base | values)
        except ValidationError as error:
            raise ConfigError([ConfigProblem(f"sweep {spec.name}", ".".join(str(p) for p in e["loc"]),
                                             f"{e['msg']} (point {values})") for e in error.errors()]) from error
        points.append(SweepPoint(point_id, values, config.model_copy(update={"training": training})))
    return points

