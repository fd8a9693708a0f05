"""Class (regularisation) images drawn by the base model, reproducible per image.

The names below load with their module on first use (lazy_loader), so that `dreamcore --help` and
`config check`, which import this package for its commands, do not import its modules (numpy, PIL, the model families)."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "datasets": ["regularisation_dataset_spec", "with_class_images"],
        "generate": ["ClassImageOutcome", "ClassImagePlan", "class_image_plan", "generate_class_images", "missing_indices"],
    },
)
