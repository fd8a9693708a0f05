"""Class (regularisation) images drawn by the base model, reproducible per image.

Names load with their module when first used (lazy_loader), so registering the class-images
command for `dreamcore --help` imports no drawing code.
"""

import lazy_loader

_EXPORTS = {  # module -> the names it gives this package
    "datasets": ["regularisation_dataset_spec", "with_class_images"],
    "generate": ["ClassImageOutcome", "ClassImagePlan", "class_image_plan", "generate_class_images", "missing_indices"],
}
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_EXPORTS)
