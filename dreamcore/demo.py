"""The demo project: tiny models, a synthetic subject dataset and SimpleTuner-style config files.

Everything is built offline and deterministically, so `dreamcore demo` runs anywhere. The base model is
the tiny SD 1.x unless a family is asked for (`dreamcore demo --family sd3`): then the tiny model of
that family, with its 16-channel preview decoder (none in pixel space: DeepFloyd IF) and a short T5 length
where the family's T5 length is configurable; an edit model (kontext) also gets grayscale reference images that
the subject images colour (a reference_strict dataset).
"""

from __future__ import annotations

import json
from pathlib import Path

from dreamcore.data.demo import SUBJECT_CLASS, SUBJECT_TOKEN, write_demo_dataset, write_demo_references
from dreamcore.models import detect_family, family_named
from dreamcore.models.families import families_of_config
from dreamcore.models.tiny import write_tiny_models

DEMO_IMAGES = 8
DEMO_CLASS_IMAGES = 6
DEMO_T5_TOKENS = 64  # the tiny character-level T5 spells each demo caption in under 64 tokens
_DEFAULT_MODEL = "sd"  # the tiny model kind of the default demo
# The DreamBooth paper's protocol on its quick subset (5 prompts), 2 images a prompt (DIV compares pairs).
SUBJECT_FIDELITY = {"--evaluation_prompt_set": "dreambooth_object", "--evaluation_quick": True,
                    "--evaluation_token": SUBJECT_TOKEN, "--evaluation_class": SUBJECT_CLASS,
                    "--evaluation_images_per_prompt": 2, "--evaluation_batch_size": 6}


def write_demo_project(workdir: Path, family: str | None = None, subject_fidelity: bool = False) -> Path:
    """Write models, data, config.json and multidatabackend.json under workdir; return config.json.

    `family` (a family name or a SimpleTuner model_family value, e.g. from `dreamcore demo --family`) picks
    the tiny base model; None: SD 1.x. `subject_fidelity` switches the subject-fidelity protocol on (DINO,
    CLIP-I, CLIP-T, PRES, DIV in the report), as `dreamcore demo` does; the tests' demo leaves it off.
    """
    workdir = Path(workdir).resolve()
    models = write_tiny_models(workdir / "models")
    base = models[_DEFAULT_MODEL] if family is None else tiny_model_of(models, family)
    model_family = detect_family(base)
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
        "--model_family": model_family.config_names[0],
        "--pretrained_model_name_or_path": str(base),
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
        "--eval_steps_interval": 15,
        "--eval_timesteps": 4,
        "--eval_dataset_fraction": 0.25,
        "--output_dir": str(workdir / "output"),
        "--storage_root": str(workdir / "artifacts"),
        "--data_backend_config": "multidatabackend.json",
    }
    if model_family.preview_decoder is not None:  # pixel space needs no decoder; Flux.2's TAEF2 is no AutoencoderTiny
        config["--validation_preview_vae"] = str(models["taesd16" if _latent_channels(base) == 16 else "taesd"])
    if model_family.sequence_tokenizer is not None:
        config["--tokenizer_max_length"] = DEMO_T5_TOKENS
    if subject_fidelity:
        config |= SUBJECT_FIDELITY | {"--evaluation_dino_model": str(models["dino"])}
    if model_family.conditions_on_references:  # an edit model: the subject images edit grayscale references
        datasets[0]["conditioning_data"] = ["subject-masks", "subject-references"]
        datasets.insert(2, {"id": "subject-references", "type": "local", "conditioning_type": "reference_strict",
                            "instance_data_dir": str(write_demo_references(data)), "caption_strategy": None,
                            "resolution": 64, "resolution_type": "pixel"})
    (workdir / "multidatabackend.json").write_text(json.dumps(datasets, indent=2) + "\n")
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return config_path


def run_summary(results: dict) -> str:
    """A few lines for the end of `dreamcore demo`, from the dreambooth flow's results: where the LoRA and the
    report are, and the evaluation's headline numbers for the base model and the final weights."""
    train, evaluate = results.get("train"), results.get("evaluate")
    lines = []
    if train:
        details = train["details"]
        loss = details.get("final_loss")
        lines.append(f"trained {details.get('adapter', 'weights')} for {train['counts'].get('steps')} steps"
                     + (f", final loss {loss:.4f}" if loss is not None else "") + "; weights:")
        lines += [f"  {name}: {uri}" for name, uri in (details.get("exports") or {}).items()]
    if evaluate:
        report = evaluate["report_uri"]
        lines.append(f"report: {report.removesuffix('.md')}.html (also {report})")
        rows = {row["weights"]: row for row in evaluate["details"].get("rows", [])}
        lines += [f"  {name:>5}: {_headline(rows[name])}" for name in ("base", "final") if name in rows]
    return "\n".join(lines)


# The evaluation's headline columns: (row key, label, format).
_HEADLINE = (("eval_loss", "eval loss", ".4f"), ("clip_mean", "CLIP score", ".2f"), ("dino", "DINO", ".3f"),
             ("clip_i", "CLIP-I", ".3f"), ("clip_t", "CLIP-T", ".3f"), ("pres", "PRES", ".3f"), ("div", "DIV", ".3f"))


def _headline(row: dict) -> str:
    return ", ".join(f"{label} {row[key]:{spec}}" for key, label, spec in _HEADLINE if row.get(key) is not None)


def tiny_model_of(models: dict[str, Path], family: str) -> Path:
    """The tiny pipeline folder the demo trains for `family`: a family name, or a SimpleTuner model_family value
    that may stand for several (sdxl: the base, not the refiner; sd1x: SD 1.x or 2.x; deepfloyd: stage I). A model
    that draws from prompts, or an upscaler named by its family name (deepfloyd-ii: it upscales the dataset's own
    images); ValueError naming the choices."""
    drawable, upscalers = {}, {}
    for folder in models.values():
        if (folder / "model_index.json").is_file():
            found = detect_family(folder)
            if not found.refines_images:
                drawable[found.name] = folder
            elif found.upscale_factor > 1:
                upscalers[found.name] = folder
    if upscalers.get(family) is not None:  # asked for by its family name: it stands for no other
        return upscalers[family]
    if drawable.get(family) is not None:  # a family's own name wins over another's model_family value
        return drawable[family]
    for name in families_of_config(family) or (family_named(family).name,):
        if name in drawable:
            return drawable[name]
    raise ValueError(f"the demo has no tiny {family} model that draws from prompts or upscales; "
                     f"choose --family from {', '.join(sorted(drawable | upscalers))}")


def _latent_channels(model: Path) -> int:
    config = json.loads((model / "vae" / "config.json").read_text())
    return int(config.get("latent_channels") or config["z_dim"])  # z_dim: Qwen-Image's video-shaped VAE
