"""Evaluating one set of weights: validation images (+ previews), their CLIP scores, the eval loss and
the DreamBooth protocol's subject-fidelity metrics (subject_fidelity).

Shared by the evaluate stage (base, checkpoints, exports) and the in-training monitor (live UNet).
Each evaluation is stored as `<folder>/result.json` plus one PNG per image (protocol images under
`protocol/`), so a stage that stops half-way keeps every finished evaluation.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dreamcore.drawing.images import png_bytes
from dreamcore.evaluate.clip_score import summarise
from dreamcore.evaluate.eval_loss import EvalLoss, compute_eval_loss
from dreamcore.evaluate.previews import preview_callback
from dreamcore.evaluate.subject_fidelity import SubjectScores, empty_summary
from dreamcore.evaluate.validation import ValidationImage, ValidationPlan, generate_batched, generate_images

if TYPE_CHECKING:
    from PIL import Image

    from dreamcore.cache.batch import TrainingBatch
    from dreamcore.evaluate.clip_score import ClipScorer
    from dreamcore.evaluate.previews import PreviewDecoder
    from dreamcore.evaluate.subject_fidelity import SubjectScorer
    from dreamcore.evaluate.webhooks import WebhookHub
    from dreamcore.models import ModelFamily
    from dreamcore.storage import ArtifactStore

logger = logging.getLogger(__name__)
RESULT_FILE = "result.json"
PROTOCOL_FOLDER = "protocol"
CLASS_PROMPT_INDEX = -1  # the prompt index of the protocol's class-prompt images (PRES)


@dataclass
class Evaluation:
    """What one set of weights scored."""

    name: str
    step: int | None
    images: list[ValidationImage] = field(default_factory=list)
    clip_scores: list[float] = field(default_factory=list)
    eval_loss: EvalLoss | None = None
    subject: SubjectScores | None = None  # the protocol's metrics (None: no protocol, or no images drawn)
    protocol_images: list[ValidationImage] = field(default_factory=list)  # only in memory (files: protocol_file)

    def summary_row(self) -> dict[str, Any]:
        """One table row: name, step, CLIP min/mean/max/std, eval loss mean."""
        clip = summarise(self.clip_scores)
        return {"weights": self.name, "step": self.step, "images": len(self.images),
                "clip_min": clip["min"], "clip_mean": clip["mean"], "clip_max": clip["max"], "clip_std": clip["std"],
                "eval_loss": self.eval_loss.mean if self.eval_loss else None}

    def subject_row(self) -> dict[str, Any]:
        """One row of the subject-fidelity table: name, step, each metric's mean and std (None when not drawn)."""
        return {"weights": self.name, "step": self.step,
                **(self.subject.summary() if self.subject else empty_summary())}


def protocol_file(prompt_index: int, seed: int) -> str:
    """Where a protocol image is stored, relative to its evaluation folder."""
    name = f"class-seed{seed}" if prompt_index == CLASS_PROMPT_INDEX else f"p{prompt_index:02d}-seed{seed}"
    return f"{PROTOCOL_FOLDER}/{name}.png"


class PreviewSender:
    """Makes a preview callback per validation image and remembers which sampling steps were sent."""

    def __init__(self, decoder: PreviewDecoder, hub: WebhookHub, every: int) -> None:
        self.decoder, self.hub, self.every = decoder, hub, every
        self.sent: dict[str, list[int]] = {}

    def __call__(self, label: str) -> Callable | None:
        if not self.hub.active:
            return None
        return preview_callback(self.decoder, self.hub, self.every, label, self.sent.setdefault(label, []))


@dataclass
class Evaluator:
    """Everything that stays fixed across the weights being compared."""

    plan: ValidationPlan
    eval_batches: list[TrainingBatch]
    timesteps: list[int]
    eval_seed: int = 0
    scorer: ClipScorer | None = None
    previews: PreviewSender | None = None
    family: ModelFamily | None = None  # how the eval loss noises and calls the denoiser (None: a DDPM UNet)
    guidance: float | None = None  # the eval loss's fixed Flux guidance
    attention_masked: bool = False  # the eval loss masks T5 padding as training did (flux_attention_masked_training)
    subject: SubjectScorer | None = None  # the DreamBooth protocol (prompts, DINO, CLIP, real embeddings)

    def evaluate(self, pipe, unet, noise_scheduler, prediction_type: str, name: str, step: int | None,
                 images: bool = True, loss: bool = True) -> Evaluation:
        """Draw (and score) the validation images with `pipe` and/or compute the eval loss of `unet`.

        `pipe` may be None when `images` is False.
        """
        result = Evaluation(name, step)
        if images and self.plan.prompts:
            result.images = generate_images(pipe, self.plan, self.previews, label=name)
            if self.scorer is not None:
                result.clip_scores = self.scorer.score([i.image for i in result.images],
                                                       [i.prompt for i in result.images])
        if images and self.subject is not None:
            result.protocol_images, result.subject = self.draw_protocol(pipe, name)
        if loss and self.eval_batches:
            result.eval_loss = compute_eval_loss(unet, noise_scheduler, prediction_type, self.eval_batches,
                                                 self.timesteps, self.eval_seed, family=self.family,
                                                 guidance=self.guidance, attention_masked=self.attention_masked)
        return result

    def draw_protocol(self, pipe, name: str) -> tuple[list[ValidationImage], SubjectScores]:
        """Every protocol prompt and the class prompt at every seed, batched; and their scores."""
        protocol = self.subject.protocol
        cells = [(p, prompt, seed) for p, prompt in enumerate(protocol.prompts) for seed in protocol.seeds]
        cells += [(CLASS_PROMPT_INDEX, protocol.class_prompt, seed) for seed in protocol.seeds]
        drawn = generate_batched(pipe, self.plan, [(prompt, seed) for _, prompt, seed in cells],
                                 self.subject.batch_size, f"{name}: protocol")
        images = [ValidationImage(p, prompt, seed, image) for (p, prompt, seed), image in zip(cells, drawn, strict=True)]
        by_prompt = [[i.image for i in images if i.prompt_index == p] for p in range(len(protocol.prompts))]
        class_images = [i.image for i in images if i.prompt_index == CLASS_PROMPT_INDEX]
        return images, self.subject.score(by_prompt, class_images)


def save_evaluation(store: ArtifactStore, folder: str, evaluation: Evaluation, extra: dict | None = None) -> None:
    """Write the images, then result.json (last: a folder with it is complete)."""
    entries = []
    for number, image in enumerate(evaluation.images):
        store.write_bytes(f"{folder}/{image.file_name}", png_bytes(image.image))
        clip = evaluation.clip_scores[number] if evaluation.clip_scores else None
        entries.append({"file": image.file_name, "prompt_index": image.prompt_index, "prompt": image.prompt,
                        "seed": image.seed, "clip_score": clip})
    for image in evaluation.protocol_images:
        store.write_bytes(f"{folder}/{protocol_file(image.prompt_index, image.seed)}", png_bytes(image.image))
    subject = evaluation.subject.as_dict() if evaluation.subject else None
    store.write_json(f"{folder}/{RESULT_FILE}", {
        "name": evaluation.name, "step": evaluation.step, "images": entries,
        "clip": summarise(evaluation.clip_scores),
        "eval_loss": evaluation.eval_loss.as_dict() if evaluation.eval_loss else None,
        **({"subject": subject} if subject else {}), **(extra or {}),
    })


def read_evaluation(store: ArtifactStore, folder: str, with_images: bool = True) -> Evaluation | None:
    """An evaluation saved by save_evaluation (None when it is not complete)."""
    from PIL import Image

    if not store.exists(f"{folder}/{RESULT_FILE}"):
        return None
    saved = store.read_json(f"{folder}/{RESULT_FILE}")
    images = []
    for entry in saved["images"]:
        picture = Image.open(io.BytesIO(store.read_bytes(f"{folder}/{entry['file']}"))).convert("RGB") \
            if with_images else _placeholder()
        images.append(ValidationImage(entry["prompt_index"], entry["prompt"], entry["seed"], picture))
    scores = [e["clip_score"] for e in saved["images"] if e["clip_score"] is not None]
    loss = EvalLoss.from_dict(saved["eval_loss"]) if saved["eval_loss"] else None
    subject = SubjectScores.from_dict(saved["subject"]) if saved.get("subject") else None
    return Evaluation(saved["name"], saved["step"], images, scores, loss, subject)


def _placeholder() -> Image.Image:
    from PIL import Image

    return Image.new("RGB", (1, 1))
