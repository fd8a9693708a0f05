"""Building an Evaluator from the training config: plan, CLIP scorer, eval timesteps, previews."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dreamcore.evaluate.clip_score import ClipScorer
from dreamcore.evaluate.eval_loss import eval_timesteps
from dreamcore.evaluate.evaluation import Evaluator, PreviewSender
from dreamcore.evaluate.previews import PreviewDecoder
from dreamcore.evaluate.validation import ValidationPlan
from dreamcore.evaluate.webhooks import WebhookHub, parse_webhook_config

if TYPE_CHECKING:
    from dreamcore.cache.batch import TrainingBatch
    from dreamcore.config import TrainingConfig
    from dreamcore.evaluate.subject_fidelity import SubjectSetup
    from dreamcore.models import ModelFamily

logger = logging.getLogger(__name__)


def make_evaluator(config: TrainingConfig, eval_batches: list[TrainingBatch], noise_scheduler, family: ModelFamily,
                   device, plan: ValidationPlan | None = None, subject: SubjectSetup | None = None) -> Evaluator:
    """The Evaluator of a config: loads CLIP (evaluation_type clip), TAESD + webhooks (validation_preview) and,
    with `subject`, the DreamBooth protocol's DINO + CLIP and real-image embeddings.

    `plan` defaults to the config's prompts; a refiner's plan (dataset images to refine) comes from
    dreamcore.evaluate.plans.validation_plan_for.
    """
    plan = plan if plan is not None else ValidationPlan.from_config(config)
    scorer = None
    if config.evaluation_type == "clip" and plan.prompts:
        scorer = ClipScorer.load(config.pretrained_evaluation_model_name_or_path, device)
    timesteps = eval_timesteps(config.eval_timesteps, noise_scheduler.config.num_train_timesteps)
    previews = make_previews(config, family, device) if plan.prompts else None
    guidance = float(family.guidance(config, 1, None)[0]) if family.guidance is not None else None
    masked = family.text_attention_masked(config)
    scorer_of_subject = None
    if subject is not None and family.refines_images:
        logger.warning("the subject-fidelity protocol draws from prompts; an image-to-image %s model refines "
                       "dataset images instead: protocol skipped", family.name)
    elif subject is not None:
        scorer_of_subject = subject.load(device, scorer)
    return Evaluator(plan, list(eval_batches), timesteps, eval_seed(config), scorer, previews, family, guidance,
                     attention_masked=masked, subject=scorer_of_subject)


def evaluation_size(evaluator: Evaluator, weights: int, resolution: tuple[int, int] | None) -> str:
    """What an evaluation is about to do, for the log before it starts (it can take many minutes)."""
    plan, parts = evaluator.plan, []
    if plan.prompts:
        parts.append(f"validation {len(plan.prompts)} prompts x {len(plan.seeds)} images")
    if evaluator.subject is not None:
        protocol = evaluator.subject.protocol
        parts.append(f"protocol {len(protocol.prompts)} prompts + class prompt x {len(protocol.seeds)} images "
                     f"(batches of {evaluator.subject.batch_size})")
    images = "; ".join(parts) or "no images"
    size = f"{resolution[0]}x{resolution[1]}" if resolution else "the model's default"
    loss = "no eval loss"
    if evaluator.eval_batches:
        latents = "x".join(str(n) for n in evaluator.eval_batches[0].latents.shape[-2:])
        loss = (f"eval loss {sum(b.size for b in evaluator.eval_batches)} eval images x {len(evaluator.timesteps)} "
                f"timesteps (latents {latents})")
    return (f"{weights} weights x ({images}), {plan.num_inference_steps} sampling steps at {size}; {loss}")


def make_previews(config: TrainingConfig, family: ModelFamily, device) -> PreviewSender | None:
    """TAESD previews over the configured webhooks, or None (previews off, no webhook, or TAESD missing)."""
    if not config.validation_preview:
        return None
    webhooks = parse_webhook_config(config.webhook_config)
    if not webhooks:
        logger.warning("validation_preview is on but webhook_config is empty: previews are off")
        return None
    decoder = PreviewDecoder.load(config.validation_preview_vae, family, device)
    if decoder is None:
        return None
    return PreviewSender(decoder, WebhookHub(webhooks), config.validation_preview_steps)


def eval_seed(config: TrainingConfig) -> int:
    """The seed of the eval noise: validation_seed, else seed, else 0 (fixed for a run)."""
    if config.validation_seed is not None:
        return config.validation_seed
    return config.seed or 0
