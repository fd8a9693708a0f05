"""The run config: the training config plus its datasets. This one model is the JSON file's
content, the CLI's input and the Prefect UI's form."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dreamcore.config.datasets import DatasetSpec, check_dataset_list
from dreamcore.config.training import TrainingConfig


class RunConfig(BaseModel):
    """Everything one Dreambooth run needs."""

    model_config = ConfigDict(extra="forbid")

    training: TrainingConfig = Field(description="Training parameters (SimpleTuner config.json keys).")
    datasets: list[DatasetSpec] = Field(description="Datasets (SimpleTuner multidatabackend.json entries).")

    @model_validator(mode="after")
    def _check_runnable(self) -> RunConfig:
        if not self.training.pretrained_model_name_or_path:
            raise ValueError("training.pretrained_model_name_or_path is required: a model folder or hub id")
        if not any(d.dataset_type == "image" for d in self.datasets):
            raise ValueError("datasets needs at least one dataset with dataset_type 'image'")
        problems = check_dataset_list(self.datasets)
        if problems:
            raise ValueError("; ".join(f"dataset {p.dataset_id!r} key {p.key!r}: {p}" for p in problems))
        return self

    def dataset(self, dataset_id: str) -> DatasetSpec:
        """The dataset with this id (KeyError listing the known ids otherwise)."""
        for spec in self.datasets:
            if spec.id == dataset_id:
                return spec
        raise KeyError(f"no dataset {dataset_id!r}; known: {[d.id for d in self.datasets]}")

    def mask_dataset(self, spec: DatasetSpec) -> DatasetSpec | None:
        """The mask dataset paired with `spec` (conditioning_data naming a conditioning_type mask dataset), or None."""
        masks = [self.dataset(i) for i in spec.conditioning_ids if not self.dataset(i).is_reference]
        return masks[0] if masks else None

    def reference_datasets(self, spec: DatasetSpec) -> list[DatasetSpec]:
        """The reference datasets paired with `spec` (an edit dataset), in conditioning_data's order."""
        return [self.dataset(i) for i in spec.conditioning_ids if self.dataset(i).is_reference]

    def caption_dropout(self, spec: DatasetSpec) -> float:
        """The chance a sample of `spec` trains on the empty caption: its own setting, else the training one."""
        own = spec.caption_dropout_probability
        return self.training.caption_dropout_probability if own is None else own

    @property
    def uses_caption_dropout(self) -> bool:
        """Whether any image dataset drops captions (the text cache then holds the empty caption)."""
        return any(self.caption_dropout(d) > 0 for d in self.datasets if d.dataset_type == "image")

    @property
    def image_datasets(self) -> list[DatasetSpec]:
        """Datasets whose files are images (subject, regularisation, masks, eval)."""
        return [d for d in self.datasets if d.is_image_like]
