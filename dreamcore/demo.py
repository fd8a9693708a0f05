"""The demo project: tiny models, a synthetic subject dataset and SimpleTuner-style config files.

Everything is built offline and deterministically, so `dreamcore demo` runs anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.data.demo import write_demo_dataset
from dreamcore.models.tiny import write_tiny_models

DEMO_IMAGES = 8
DEMO_CLASS_IMAGES = 6


def write_demo_project(workdir: Path) -> Path:
    """Write models, data, config.json and multidatabackend.json under workdir; return config.json."""
    workdir = Path(workdir).resolve()
    models = write_tiny_models(workdir / "models")
    data = write_demo_dataset(
        workdir / "data", n_images=DEMO_IMAGES, include_masks=True, include_class_images=DEMO_CLASS_IMAGES
    )
    datasets = [
        {
            "id": "subject",
            "type": "local",
            "instance_data_dir": str(data.images_dir),
            "caption_strategy": "textfile",
            "conditioning_data": "subject-masks",
            "resolution": 64,
            "resolution_type": "pixel",
            "minimum_image_size": 64,
            "repeats": 4,
        },
        {
            "id": "subject-masks",
            "type": "local",
            "dataset_type": "conditioning",
            "conditioning_type": "mask",
            "instance_data_dir": str(data.masks_dir),
            "resolution": 64,
            "resolution_type": "pixel",
        },
        {
            "id": "regularisation",
            "type": "local",
            "instance_data_dir": str(data.class_images_dir),
            "caption_strategy": "instanceprompt",
            "instance_prompt": data.class_prompt,
            "resolution": 64,
            "resolution_type": "pixel",
            "minimum_image_size": 64,
            "is_regularisation_data": True,
        },
        {"id": "text-embeds", "type": "local", "dataset_type": "text_embeds", "default": True},
    ]
    config = {
        "--model_family": "sd1x",
        "--pretrained_model_name_or_path": str(models["sd"]),
        "--model_type": "lora",
        "--lora_rank": 4,
        "--learning_rate": 1e-3,
        "--max_train_steps": 30,
        "--checkpointing_steps": 10,
        "--train_batch_size": 2,
        "--mixed_precision": "no",
        "--seed": 0,
        "--validation_prompt": data.instance_prompt,
        "--validation_num_inference_steps": 4,
        "--validation_resolution": 64,
        "--num_validation_images": 2,
        "--validation_steps": 15,
        "--evaluation_type": "clip",
        "--pretrained_evaluation_model_name_or_path": str(models["clip"]),
        "--validation_preview_vae": str(models["taesd"]),
        "--eval_steps_interval": 15,
        "--eval_timesteps": 4,
        "--eval_dataset_fraction": 0.25,
        "--output_dir": str(workdir / "output"),
        "--storage_root": str(workdir / "artifacts"),
        "--data_backend_config": "multidatabackend.json",
    }
    (workdir / "multidatabackend.json").write_text(json.dumps(datasets, indent=2) + "\n")
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return config_path
