"""Class (regularisation) images drawn by the base model, reproducible per image."""

from dreamcore.regularise.datasets import regularisation_dataset_spec, with_class_images
from dreamcore.regularise.generate import (
    ClassImageOutcome,
    ClassImagePlan,
    class_image_plan,
    generate_class_images,
    missing_indices,
)

__all__ = [
    "ClassImageOutcome",
    "ClassImagePlan",
    "class_image_plan",
    "generate_class_images",
    "missing_indices",
    "regularisation_dataset_spec",
    "with_class_images",
]
